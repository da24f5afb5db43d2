"""A dataset's metadata.jsonl is untrusted: every field is type-checked, every path stays inside
the dataset folder, and tools.stylize_references writes nowhere else."""

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamdance.errors import InputError
from dreamdance.train.layout import ClipRecord, dataset_path, read_metadata
from dreamdance.train.prepare import check_names
from dreamdance.train.prepare_units import clear_dataset
from dreamdance.train.stylize import stylize_dataset

VALID = {"name": "a", "video": "clips/a/video.mp4", "poses": "clips/a/poses.json",
         "mask": "clips/a/mask.mp4", "style": "clips/a/style.png", "style_frame": 3,
         "frames": 120, "fps": 24.0, "width": 720, "height": 1280, "kind": "person",
         "split": "train", "source": "dance.mp4"}


def _write(root: Path, *rows, raw: bytes | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode()
    (root / "metadata.jsonl").write_bytes(text)
    return root


def _refused(root: Path, match: str) -> str:
    with pytest.raises(InputError, match=match) as e:
        read_metadata(root)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_a_valid_row_is_read_with_its_types(tmp_path):
    (record,) = read_metadata(_write(tmp_path / "data", {**VALID, "fps": 24}))
    assert record == ClipRecord(**{**VALID, "fps": 24.0})
    assert isinstance(record.fps, float)


@pytest.mark.parametrize("field, value", [
    ("video", "/etc/passwd"), ("poses", "//server/poses.json"), ("style", "/tmp/style.png")])
def test_absolute_paths_are_refused(tmp_path, field, value):
    message = _refused(_write(tmp_path / "data", {**VALID, field: value}),
                       f"metadata.jsonl line 1: {field}=.*an absolute path")
    assert value in message


@pytest.mark.parametrize("field, value", [
    ("video", "../outside.mp4"), ("mask", "clips/../../outside.mp4"),
    ("style", "clips/a/../../../x/style.png"), ("poses", "."), ("video", "clips/..")])
def test_dot_dot_escapes_are_refused(tmp_path, field, value):
    _refused(_write(tmp_path / "data", {**VALID, field: value}),
             f"metadata.jsonl line 1: {field}=.*(leads out of|the dataset folder itself)")


def test_dot_dot_inside_the_folder_is_read(tmp_path):
    (record,) = read_metadata(_write(tmp_path / "data", {**VALID, "video": "clips/b/../a/v.mp4"}))
    assert record.video == "clips/b/../a/v.mp4"


@pytest.mark.parametrize("name", ["../../outside", "a/b", "..", ".", "a\\b", "", "a\0b"])
def test_a_clip_name_must_be_one_folder_name(tmp_path, name):
    _refused(_write(tmp_path / "data", {**VALID, "name": name}), "line 1: name=")


def test_a_symlink_leading_out_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = _write(tmp_path / "data", {**VALID, "video": "clips/a/video.mp4"})
    (root / "clips").mkdir()
    (root / "clips" / "a").symlink_to(outside, target_is_directory=True)
    message = _refused(root, "line 1: video=.*leads out of the dataset folder")
    assert str(outside) in message


@pytest.mark.parametrize("field, value", [
    ("name", 7), ("video", ["clips/a/video.mp4"]), ("video", None), ("poses", 3),
    ("mask", True), ("style", {"path": "x"}), ("style_frame", 1.5), ("style_frame", "3"),
    ("frames", True), ("frames", -1), ("frames", 120.0), ("fps", "24"), ("fps", False),
    ("fps", -1.0), ("fps", math.inf), ("fps", math.nan), ("width", None), ("height", 2**40),
    ("kind", ["person"]), ("kind", "robot"), ("split", None), ("source", 5)])
def test_a_field_of_the_wrong_type_is_refused(tmp_path, field, value):
    message = _refused(_write(tmp_path / "data", {**VALID, field: value}),
                       f"metadata.jsonl line 1: {field}=")
    assert message.startswith(f"data={tmp_path / 'data'}: metadata.jsonl line 1: {field}=")


def test_the_line_is_named(tmp_path):
    root = _write(tmp_path / "data", VALID, {**VALID, "name": "b", "video": "/b.mp4"})
    _refused(root, "metadata.jsonl line 2: video=")


@pytest.mark.parametrize("raw, match", [
    (b'{"name": "a", "video": "v.mp4", "kind": "scene"\n', "line 1: not JSON"),
    (b'\xff\xfe{}\n', "line 1: not UTF-8"),
    (b'{"name": "a", "video": "v.mp4", "kind": "scene", "frames": 1' + b"0" * 5000 + b"}\n",
     "line 1: not usable JSON"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: not usable JSON"),
    (b'["a"]\n', "line 1: not a JSON object"),
])
def test_lines_that_are_not_records_are_refused(tmp_path, raw, match):
    _refused(_write(tmp_path / "data", raw=raw), match)


def test_dataset_path_refuses_a_way_out(tmp_path):
    assert dataset_path(tmp_path, "clips/a/x.png", "x") == tmp_path.resolve() / "clips/a/x.png"
    for bad in ("/abs", "../x", "a/../../x", "."):
        with pytest.raises(InputError):
            dataset_path(tmp_path, bad, "x")


# --------------------------------------------------------------------------------------------
# tools.stylize_references writes nowhere outside the dataset


def _never():
    raise AssertionError("the models were loaded")


def test_stylize_refuses_a_clip_name_of_dot_dot_steps(tmp_path):
    root = _write(tmp_path / "a" / "b" / "data",
                  {**VALID, "name": "../../..", "style": None, "style_frame": None})
    with pytest.raises(InputError, match="name="):
        stylize_dataset(root, _never, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.name == "style.png"] == []


def test_stylize_refuses_a_clip_folder_that_is_a_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = _write(tmp_path / "data", {**VALID, "video": "videos/a.mp4", "poses": "poses/a.json",
                                      "mask": None, "style": None, "style_frame": None})
    (root / "clips").mkdir()
    (root / "clips" / "a").symlink_to(outside, target_is_directory=True)
    before = (root / "metadata.jsonl").read_bytes()
    with pytest.raises(InputError, match="clip 'a' clips/a/style.png: leads out"):
        stylize_dataset(root, _never, progress=False)
    assert list(outside.iterdir()) == []
    assert (root / "metadata.jsonl").read_bytes() == before


def test_prepare_refuses_a_source_whose_stem_is_no_clip_name():
    with pytest.raises(InputError, match=r"a\\b\.mp4: must be one folder name"):
        check_names([Path("videos/ok.mp4"), Path("videos/a\\b.mp4")])


def test_rebuilding_a_dataset_removes_a_symlinked_clips_folder_not_its_target(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    out = _write(tmp_path / "data", VALID)
    (out / "clips").symlink_to(outside, target_is_directory=True)
    clear_dataset(out)
    assert list(out.iterdir()) == [] and (outside / "keep").is_dir()


# --------------------------------------------------------------------------------------------
# Fuzzing: mutations of a valid row are refused with an InputError or read correctly

_ESCAPES = ["/etc/passwd", "../x", "clips/../../x", "clips/out/video.mp4", ".", "", "a\0b",
            "\ud800", "~/x", "clips//a", "x" * 5000]
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(_ESCAPES), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["person", "scene", "train", "val"]))
_MUTATION = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(sorted(VALID)), _VALUES),
    st.tuples(st.just("drop"), st.sampled_from(sorted(VALID)), st.none()),
    st.tuples(st.just("add"), st.text(min_size=1, max_size=8), _VALUES))


def _mutate(row: dict, mutations) -> dict:
    row = dict(row)
    for op, key, value in mutations:
        if op == "drop":
            row.pop(key, None)
        else:
            row[key] = value
    return row


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    (base / "outside").mkdir()
    (base / "data" / "clips").mkdir(parents=True)
    (base / "data" / "clips" / "out").symlink_to(base / "outside", target_is_directory=True)
    return base / "data"


def _check_parsed(root: Path, record: ClipRecord) -> None:
    inside = Path(os.path.realpath(root))
    assert isinstance(record.name, str) and "/" not in record.name
    for key in ("video", "poses", "mask", "style"):
        value = getattr(record, key)
        if value is not None:
            assert Path(os.path.realpath(root / value)).is_relative_to(inside), (key, value)
    for key in ("frames", "width", "height"):
        assert type(getattr(record, key)) is int and getattr(record, key) >= 0
    assert type(record.fps) is float and math.isfinite(record.fps)
    assert record.kind in ("person", "scene") and record.split in ("train", "val")


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=3))
def test_fuzz_malformed_rows_are_refused_or_read(fuzz_root, mutations):
    row = _mutate(VALID, mutations)
    (fuzz_root / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    try:
        records = read_metadata(fuzz_root)
    except InputError as e:
        assert "\n" not in str(e) and str(e).startswith(f"data={fuzz_root}: metadata.jsonl line 1")
        return
    (record,) = records
    _check_parsed(fuzz_root, record)
