"""Readers of files from strangers refuse malformed input with one line, in bounded memory.

Pose files (ours and OpenPose, a file or a folder), camera files (our JSON, TUM,
RealEstate10K), 3DGS PLY, images and videos are generated as mutations of valid files — fields
dropped or given the wrong type, huge, negative or non-finite numbers, deep nesting, ragged
lists, thousands of empty people, flipped bytes, truncation — and read by the functions the
command line calls. Each must parse or be refused with an ``InputError`` of one line naming the
input; no other exception may escape.

Memory bound: while one generated file is read, the peak of traced allocations (``tracemalloc``:
Python objects and numpy arrays) stays below ``PEAK_MB`` = 64 MB. The files are at most a few
hundred kilobytes and some claim up to 10^30 frames, people, cameras or vertices, so a reader
that allocated what a file claims breaks the bound (or runs out of memory). An image whose
header claims more pixels than it holds may still decode (JPEG fills the rest): an image that
parses may add 64 bytes per decoded pixel (float32 RGB and alpha, and the 8-bit copy they come
from). Pillow's and ffmpeg's own buffers are not traced: for images and videos the big claims
are plain tests asserting the refusal, as are the cases named in the readers' bounds (``MAX_*``
in each module).
"""

import copy
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamdance.camera import Trajectory, intrinsics_from_fov, quaternion_to_rotation, resample
from dreamdance.camera import files as trajectory
from dreamdance.camera.files import format_re10k, format_tum, load_camera, trajectory_to_json
from dreamdance.errors import InputError
from dreamdance.media import load_image, probe_video, read_video, save_image, write_video
from dreamdance.motion import openpose, poses
from dreamdance.motion.poses import PARTS, PoseSequence, fit_to_frames, read_poses
from dreamdance.motion.smooth import sanitize
from dreamdance.motion.sources import read_pose_file
from dreamdance.scene.gaussians import Gaussians, load_ply, save_ply

PEAK_MB = 64
FRAMES, FPS = 16, 12.0  # the config a run asks the motion for
W, H = 64, 48
K0 = intrinsics_from_fov(55.0, W, H)
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- running a reader -------------------------------------------------------------------------


def traced(read, path):
    """``(result, refusal, peak)``: what ``read(path)`` returns (None when refused), the
    ``InputError`` it refuses with (None when it parses), and its peak of traced allocations
    in bytes. Any other exception propagates."""
    tracemalloc.start()
    try:
        return read(path), None, tracemalloc.get_traced_memory()[1]
    except InputError as e:
        return None, e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_reader(read, path: Path, name: str, allowance=lambda result: 0):
    """``read(path)``'s result, or None when refused with one line naming ``name``; its traced
    peak stays below ``PEAK_MB`` plus ``allowance(result)`` bytes (what a file that parses may
    legitimately cost)."""
    result, refused, peak = traced(read, path)
    if refused is not None:
        message = str(refused)
        assert "\n" not in message and message.startswith(f"{name}: "), message
        assert len(message) < 400, message
    assert peak < (PEAK_MB << 20) + allowance(result), f"{peak / 2**20:.0f} MB traced"
    return result


def refusal(read, path: Path) -> str:
    """The problem ``read(path)`` refuses with, in one line and below ``PEAK_MB``."""
    _, refused, peak = traced(read, path)
    assert refused is not None, f"{path.name} was read, not refused"
    assert "\n" not in str(refused), str(refused)
    assert peak < PEAK_MB << 20, f"{peak / 2**20:.0f} MB traced"
    return refused.problem


def pose_input(path: Path):
    """``poses=PATH`` as a run reads it: ours or OpenPose, fitted to the frames, checked."""
    name = f"poses={path}"
    seq = fit_to_frames(read_pose_file(path, name, FPS), FRAMES, FPS, "hold", name=name)
    out = sanitize(seq, name)
    assert len(out) == FRAMES and np.isfinite(out.body).all()
    return out


def camera_input(path: Path) -> Trajectory:
    """``camera=PATH`` as a run reads it, resampled to the frames."""
    cams = resample(load_camera(str(path), FRAMES, W, H, K0, depth=2.0), FRAMES)
    assert np.isfinite(cams.w2c).all() and np.isfinite(cams.K).all()
    return cams


def video_input(path: Path):
    info = probe_video(path, name="driving=v")
    video = read_video(path, name="driving=v", max_frames=8)
    return info, video


# --- valid files to mutate --------------------------------------------------------------------


def _sequence(t=2, people=2) -> PoseSequence:
    rng = np.random.default_rng(0)
    arrays = {part: np.concatenate([rng.uniform(0, 60, (t, people, k, 2)),
                                    rng.uniform(0.1, 1, (t, people, k, 1))], -1).round(1)
              .astype(np.float32) for part, k in PARTS.items()}
    return PoseSequence(**arrays, width=W, height=H, fps=8.0)


def _pose_doc() -> dict:
    seq = _sequence()
    frames = [{"people": [{part: getattr(seq, part)[t, p].tolist() if p == 0 or part == "body"
                           else None for part in PARTS} for p in range(2)]} for t in range(2)]
    return {"format": "dreamdance-poses", "version": 1, "width": W, "height": H, "fps": 8,
            "driver": 0, "frames": frames}


def _openpose_doc(t: int = 0) -> dict:
    seq = _sequence()
    body = seq.body[t, 0].tolist()
    body25 = body[:8] + [[30.0, 30.0, 0.9]] + body[8:] + [[0.0, 0.0, 0.0]] * 6
    return {"version": 1.3, "canvas_width": W, "canvas_height": H, "people": [
        {"pose_keypoints_2d": sum(body, []),
         "face_keypoints_2d": sum(seq.face[t, 0].tolist(), []) + [0.0] * 6,
         "hand_left_keypoints_2d": sum(seq.left_hand[t, 0].tolist(), []),
         "hand_right_keypoints_2d": []},
        {"pose_keypoints_2d": sum(body25, [])}]}


def _trajectory(n=3) -> Trajectory:
    rng = np.random.default_rng(1)
    R = quaternion_to_rotation(rng.normal(size=(n, 4)))
    w2c = np.zeros((n, 4, 4))
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = rng.normal(size=(n, 3))
    w2c[:, 3, 3] = 1
    return Trajectory(w2c, np.repeat(K0[None], n, 0), W, H)


def _gaussians(n=3) -> Gaussians:
    g = torch.Generator().manual_seed(0)
    return Gaussians(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g),
                     torch.randn(n, 3, generator=g), torch.randn(n, generator=g),
                     torch.rand(n, 3, generator=g))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    """Valid small files: PNG (RGBA), JPEG, PLY and an mp4 of 3 frames."""
    root = tmp_path_factory.mktemp("valid")
    rgb = np.random.default_rng(2).random((6, 8, 3)).astype(np.float32)
    save_image(root / "a.png", rgb, alpha=rgb[..., 0])
    save_image(root / "a.jpg", rgb)
    save_ply(root / "g.ply", _gaussians())
    write_video(root / "v.mp4", (np.repeat(rgb[None], 3, 0) * 255).astype(np.uint8), 8.0)
    return {p.suffix: p.read_bytes() for p in root.iterdir()}


# --- mutations --------------------------------------------------------------------------------

# Text put into a JSON file as written (json.dumps cannot write these).
RAW = {"@raw-big@": "1e400", "@raw-negbig@": "-1e400", "@raw-digits@": "7" * 5000,
       "@raw-deep@": "[" * 5000 + "]" * 5000, "@raw-deepobj@": '{"a": ' * 3000 + "1" + "}" * 3000}
SPECIAL = [None, True, False, "", "7", "abc", [], {}, 0, -1, 1, 0.5, 1e-9, -3.5, 1e9, 2**31,
           2**64, 10**30, -(10**30), 1.5e308, float("nan"), float("inf"), float("-inf"),
           [[1, 2], [3]], [True, False, True], ["1", "2", "3"], [[0, 0, 1]] * 17, *RAW]
JSON_VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=4),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-1e3, 1e3), st.booleans(), st.none()),
             max_size=7),
    st.integers(0, 3000).map(lambda n: [{}] * n),  # thousands of empty people, or frames
    st.integers(0, 80).map(lambda n: [[1.0, 2.0, 0.5]] * n),  # keypoints of any count
    st.integers(0, 80).map(lambda n: [0.5] * n),
)


def _locations(node, depth=0):
    """Every ``(container, key, depth)`` in a JSON tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        yield node, key, depth
        if isinstance(value, dict | list):
            yield from _locations(value, depth + 1)


@st.composite
def mutated_json(draw, doc: dict) -> bytes:
    """``doc`` with one to three fields replaced, dropped, repeated or nested, then perhaps
    truncated or given bytes that are not UTF-8."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        places = list(_locations(doc))
        shallow = [p for p in places if p[2] <= 3]  # header, frames, people, parts
        node, key, _ = draw(st.sampled_from(draw(st.sampled_from([shallow, places]))))
        op = draw(st.sampled_from(["replace", "replace", "drop", "repeat", "nest"]))
        if op == "replace":
            node[key] = copy.deepcopy(draw(JSON_VALUES))  # SPECIAL's lists stay as they are
        elif op == "drop":
            del node[key]
        elif op == "repeat" and isinstance(node, list):  # many of a number, a few of a frame
            many = 100 if isinstance(node[key], int | float) else 3
            node.extend(copy.deepcopy(node[key]) for _ in range(draw(st.integers(1, many))))
        else:
            node[key] = [node[key]]
    text = json.dumps(doc)
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker), raw)
    return _damage(draw, text.encode())


def _damage(draw, data: bytes) -> bytes:
    """Most often ``data`` as it is; else truncated, or with a few bytes changed."""
    how = draw(st.sampled_from(["none", "none", "none", "truncate", "bytes"]))
    if how == "truncate" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "bytes" and data:
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    return data


TOKENS = ["nan", "inf", "-inf", "1e400", "-1e400", "abc", "1_0", "0x10", "1" * 400, "1e-400",
          "-0", "1e9", "1e300", "5", "0", "-1", "https://x", "#", "{"]


@st.composite
def mutated_text(draw, text: str) -> bytes:
    """A TUM / RealEstate10K file with tokens or lines replaced, dropped or repeated."""
    lines = [line.split() for line in text.splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["token", "token", "drop token", "drop line", "repeat",
                                   "insert", "add token"]))
        if op in ("token", "drop token", "add token") and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            if op == "token":
                lines[i][j] = draw(st.one_of(st.sampled_from(TOKENS),
                                             st.floats().map(repr)))
            elif op == "drop token":
                del lines[i][j]
            else:
                lines[i].insert(j, draw(st.sampled_from(TOKENS)))
        elif op == "drop line" and len(lines) > 1:
            del lines[i]
        elif op == "repeat":
            lines[i + 1:i + 1] = [list(lines[i])] * draw(st.integers(1, 200))
        elif op == "insert":
            lines.insert(i, draw(st.lists(st.sampled_from(TOKENS), max_size=20)))
    return _damage(draw, "\n".join(" ".join(t) for t in lines).encode())


COUNTS = ["0", "1", "2", "4", str(10**12), str(10**30), "1" * 41, "-1", "abc", ""]
PROPERTY_TYPES = ["uchar", "double", "int", "list uchar int", "float16", "", "float float"]


@st.composite
def mutated_ply(draw, data: bytes) -> bytes:
    """A 3DGS PLY with header lines changed (counts, types, formats, properties) or body bytes
    changed (NaN, flips), then perhaps truncated."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header, body = data[:end].decode().splitlines(), bytearray(data[end:])
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(header) - 1))
        words = header[i].split()
        op = draw(st.sampled_from(["count", "count", "type", "format", "drop", "repeat",
                                   "element", "nan", "body"]))
        if op == "count":
            header[2] = f"element vertex {draw(st.sampled_from(COUNTS))}"
        elif op == "type" and words[0] == "property":
            header[i] = f"property {draw(st.sampled_from(PROPERTY_TYPES))} {words[-1]}"
        elif op == "format":
            header[1] = draw(st.sampled_from(["format ascii 1.0", "format binary_big_endian 1.0",
                                              "format binary_little_endian", "format x 1.0"]))
        elif op == "drop" and 0 < i < len(header) - 1:
            del header[i]
        elif op == "repeat":
            header.insert(i, header[i])
        elif op == "element":
            header.insert(draw(st.integers(1, len(header) - 1)),
                          draw(st.sampled_from(["element face 5", "comment x", "obj_info y",
                                                "element vertex 3", "property float w"])))
        elif op == "nan" and body:
            at = 4 * draw(st.integers(0, len(body) // 4 - 1))
            body[at:at + 4] = draw(st.sampled_from([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f",
                                                    b"\xff\xff\x7f\x7f"]))
        elif op == "body" and body:
            body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
    return _damage(draw, ("\n".join(header) + "\n").encode() + bytes(body))


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """Bytes changed, truncated, or random bytes altogether."""
    how = draw(st.sampled_from(["flip", "flip", "truncate", "random", "empty"]))
    if how == "random":
        return draw(st.binary(max_size=2000))
    if how == "empty":
        return b""
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 10))):
        b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
    return bytes(b)


# --- fuzz tests -------------------------------------------------------------------------------


@settings(max_examples=70, **FUZZ)
@given(data=mutated_json(_pose_doc()))
def test_fuzz_our_pose_files(tmp_path, data):
    path = tmp_path / "poses.json"
    path.write_bytes(data)
    run_reader(pose_input, path, f"poses={path}")


@settings(max_examples=50, **FUZZ)
@given(data=mutated_json(_openpose_doc()), folder=st.booleans())
def test_fuzz_openpose_files(tmp_path, data, folder):
    root = tmp_path / "frames"
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    (root / "f_0.json").write_text(json.dumps(_openpose_doc(1)))
    (root / "f_1.json").write_bytes(data)
    path = root if folder else root / "f_1.json"
    run_reader(pose_input, path, f"poses={path}")


@settings(max_examples=40, **FUZZ)
@given(data=mutated_json(trajectory_to_json(_trajectory(), fps=8.0)))
def test_fuzz_camera_json(tmp_path, data):
    path = tmp_path / "camera.json"
    path.write_bytes(data)
    run_reader(camera_input, path, f"camera={path}")


@settings(max_examples=50, **FUZZ)
@given(data=st.one_of(mutated_text(format_tum(_trajectory(), fps=8.0)),
                      mutated_text(format_re10k(_trajectory(), fps=8.0))))
def test_fuzz_camera_text(tmp_path, data):
    path = tmp_path / "camera.txt"
    path.write_bytes(data)
    run_reader(camera_input, path, f"camera={path}")


@settings(max_examples=40, **FUZZ)
@given(data=st.data())
def test_fuzz_ply(tmp_path, media, data):
    path = tmp_path / "g.ply"
    path.write_bytes(data.draw(mutated_ply(media[".ply"])))
    g = run_reader(lambda p: load_ply(p, name="scene=g.ply"), path, "scene=g.ply")
    assert g is None or all(torch.isfinite(t).all() for t in (g.means, g.quats, g.colors))


@settings(max_examples=25, **FUZZ)
@given(data=st.data(), source=st.sampled_from([".png", ".jpg"]),
       suffix=st.sampled_from([".png", ".jpg", ".webp", ".txt"]))
def test_fuzz_images(tmp_path, media, data, source, suffix):
    path = tmp_path / f"art{suffix}"
    path.write_bytes(data.draw(mutated_bytes(media[source])))
    image = run_reader(lambda p: load_image(p, name="image=art"), path, "image=art",
                       allowance=lambda image: 0 if image is None else 64 * image.rgb[..., 0].size)
    assert image is None or image.rgb.ndim == 3 and np.isfinite(image.rgb).all()


@settings(max_examples=6, **FUZZ)
@given(data=st.data(), suffix=st.sampled_from([".mp4", ".mp4", ".webm", ".png"]))
def test_fuzz_videos(tmp_path, media, data, suffix):
    path = tmp_path / f"v{suffix}"
    path.write_bytes(data.draw(mutated_bytes(media[".mp4"])))
    run_reader(video_input, path, "driving=v")


# --- the named cases: each bound, and the malformed input it stops --------------------------


def _pose_file(tmp_path: Path, edit) -> Path:
    """Our pose file with ``edit(doc)`` applied (a string it returns is the file's text)."""
    doc = _pose_doc()
    text = edit(doc)
    path = tmp_path / "poses.json"
    path.write_text(text if isinstance(text, str) else json.dumps(doc))
    return path


def _person(doc: dict, **parts) -> None:
    doc["frames"][0]["people"][0].update(parts)


@pytest.mark.parametrize("edit, problem", [
    (lambda d: '{"format": "dreamdance-poses", "width": ' + "[" * 5000 + "]" * 5000 + "}",
     "not valid JSON (nested too deeply)"),
    (lambda d: d.update(width=float("inf")), "bad header: width=inf (expected an integer in "
                                             "1..16384)"),
    (lambda d: json.dumps(d).replace('"width": 64', '"width": 1e400'),
     "bad header: width=inf (expected an integer in 1..16384)"),
    (lambda d: d.update(height=True), "bad header: height=true (expected an integer in "
                                      "1..16384)"),
    (lambda d: d.update(fps=1e-9), "bad header: fps=1e-09 (expected a number in 0.1..1000)"),
    (lambda d: d.update(fps="8"), 'bad header: fps="8" (expected a number in 0.1..1000)'),
    (lambda d: d["frames"].__setitem__(1, []),
     'frame 1 is a 0-item list, expected an object with a "people" list'),
    (lambda d: d["frames"][1].update(people={}), "frame 1: people is an object, expected a list"),
    (lambda d: _person(d, body=[["1", "2", "3"]] * 18),
     'frame 0 person 0 body: not a list of numbers (found "1")'),
    (lambda d: _person(d, body=[[True, 1, 1]] * 18),
     "frame 0 person 0 body: not a list of numbers (found true)"),
    (lambda d: _person(d, body=[[1, 2, 3]] * 17 + [[1, 2]]),
     "frame 0 person 0 body: expected 18 keypoints of (x, y, confidence), got a ragged list"),
    (lambda d: _person(d, body="nose"),
     'frame 0 person 0 body: expected 18 keypoints of (x, y, confidence), got "nose"'),
    (lambda d: _person(d, body=[[1e300, 0, 1]] * 18),
     "frame 0 person 0 body: value 1e+300 beyond +-1e+06"),
    (lambda d: _person(d, body=[[10**400, 0, 1]] * 18),
     "frame 0 person 0 body: a number too large"),
    (lambda d: d["frames"][0].update(people=[{}] * 1000), "frame 0: 1000 people, more than 64"),
    (lambda d: d.update(frames=[{"people": [{}] * 64}] + [{}] * 1600),
     "1601 frames x 64 people is more than 100000 poses"),
    (lambda d: d.update(frames=[{}] * 100_001), "100001 frames, more than 100000"),
    (lambda d: d.update(frames=[{}], driver=2), "driver 2 but only 0 people"),
])
def test_pose_file_refusals(tmp_path, edit, problem):
    assert refusal(pose_input, _pose_file(tmp_path, edit)) == problem


def test_a_pose_file_too_large_is_refused_unread(tmp_path):
    path = tmp_path / "poses.json"
    with open(path, "wb") as f:
        f.truncate(poses.MAX_FILE_BYTES + 1)  # sparse: no disk used, nothing to read
    assert refusal(lambda p: read_poses(p, name="poses=p"), path) == (
        f"{poses.MAX_FILE_BYTES + 1} bytes, more than a pose file may hold "
        f"({poses.MAX_FILE_BYTES} bytes)")


def test_fit_to_frames_makes_only_the_frames_it_keeps():
    """A file at the lowest fps fitted to the highest would resample to 490,001 frames
    (0.7 GB); only the 16 kept are made, with the values the whole resample gives them."""
    seq = _sequence(t=50, people=1)
    seq.fps = poses.MIN_FPS
    fitted, _, peak = traced(lambda s: fit_to_frames(s, FRAMES, poses.MAX_FPS), seq)
    assert len(fitted) == FRAMES and peak < 1 << 20
    small = fit_to_frames(seq, FRAMES, 3.0)  # 1471 frames: small enough to make whole
    whole = poses.resample_poses(seq, round(49 * 3.0 / poses.MIN_FPS) + 1)
    for part in PARTS:
        np.testing.assert_array_equal(getattr(small, part), getattr(whole, part)[:FRAMES])


def _openpose_folder(tmp_path: Path, *docs) -> Path:
    root = tmp_path / "frames"
    root.mkdir()
    for i, doc in enumerate(docs):
        text = doc if isinstance(doc, str) else json.dumps(doc)
        (root / f"f_{i}.json").write_text(text)
    return root


def _openpose_with(**fields) -> dict:
    doc = _openpose_doc()
    doc.update(fields)
    return doc


def _openpose_part(key, values) -> dict:
    doc = _openpose_doc()
    doc["people"][0][key] = values
    return doc


@pytest.mark.parametrize("doc, problem", [
    ('{"people": ' + "[" * 5000 + "]" * 5000 + "}", ": not valid JSON (nested too deeply)"),
    (_openpose_with(canvas_width=float("inf")),
     ": canvas_width=inf, canvas_height=48 must be integers in 1..16384"),
    (_openpose_with(canvas_width="64"),
     ': canvas_width="64", canvas_height=48 must be integers in 1..16384'),
    (_openpose_with(people=[{}] * 1000), ": 1000 people, more than 64"),
    (_openpose_part("pose_keypoints_2d", ["1"] * 54),
     ' person 0 pose_keypoints_2d: not a list of numbers (found "1")'),
    (_openpose_part("pose_keypoints_2d", [True] * 54),
     " person 0 pose_keypoints_2d: not a list of numbers (found true)"),
    (_openpose_part("pose_keypoints_2d", [[1.0, 2.0, 3.0]] * 18),
     " person 0 pose_keypoints_2d: 18 values, not a flat list of (x, y, confidence) triples"),
    (_openpose_part("hand_left_keypoints_2d", {"x": 1}),
     " person 0 hand_left_keypoints_2d: not a list of numbers (got an object)"),
    (_openpose_part("pose_keypoints_2d", [1e300] * 54),
     " person 0 pose_keypoints_2d: value 1e+300 beyond +-1e+06"),
    (_openpose_part("pose_keypoints_2d", [10**400] * 54),
     " person 0 pose_keypoints_2d: a number too large"),
    (_openpose_with(people=[None]), " person 0: not an object"),
])
def test_openpose_refusals(tmp_path, doc, problem):
    root = _openpose_folder(tmp_path, doc)
    assert refusal(pose_input, root) == f"frame 0 (f_0.json){problem}"


def test_openpose_counts_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(poses, "MAX_PERSON_FRAMES", 100)
    many = _openpose_with(people=[{}] * 60)
    root = _openpose_folder(tmp_path, many, many)
    assert refusal(pose_input, root) == "2 frames x 60 people is more than 100 poses"
    monkeypatch.setattr(openpose, "MAX_FRAMES", 1)
    assert refusal(pose_input, root) == "folder holds more than 1 .json files (one per frame)"


def test_an_openpose_file_too_large_is_refused_unread(tmp_path):
    root = _openpose_folder(tmp_path, _openpose_doc())
    with open(root / "f_0.json", "r+b") as f:
        f.truncate(openpose.MAX_FILE_BYTES + 1)
    assert refusal(pose_input, root) == (
        f"frame 0 (f_0.json): {openpose.MAX_FILE_BYTES + 1} bytes, more than one frame's file "
        f"may hold ({openpose.MAX_FILE_BYTES} bytes)")


def _camera_json(tmp_path: Path, edit) -> Path:
    doc = trajectory_to_json(_trajectory(), fps=8.0)
    text = edit(doc)
    path = tmp_path / "camera.json"
    path.write_text(text if isinstance(text, str) else json.dumps(doc))
    return path


def _w2c(doc: dict, value) -> None:
    doc["frames"][0]["w2c"][0][3] = value


@pytest.mark.parametrize("edit, problem", [
    (lambda d: '{"format": "dreamdance-camera", "frames": ' + "[" * 5000 + "]" * 5000 + "}",
     "not valid JSON: nested too deeply"),
    (lambda d: d["frames"][0].update(width=float("inf")),
     "frames[0]: width and height must be positive integers up to 16384, got inf, 48"),
    (lambda d: d["frames"][0].update(height=10**30),
     "frames[0]: width and height must be positive integers up to 16384, got 64, "
     "1000000000000000000000000000000"),
    (lambda d: _w2c(d, 1e300), "frames[0].w2c: value 1e+300 beyond +-1e+08"),
    (lambda d: _w2c(d, 10**400), "frames[0].w2c: a number too large"),
    (lambda d: _w2c(d, True), "frames[0].w2c: expected a 4x4 list of numbers"),
    (lambda d: d["frames"][0]["K"][0].pop(), "frames[0].K: expected a 3x3 list of numbers"),
    (lambda d: d.update(fps=True), "fps must be a positive number, got true"),
    (lambda d: d.update(version=True), "unsupported version true (this DreamDance reads "
                                       "version 1)"),
    (lambda d: d["frames"].__setitem__(1, "x"),
     "frames[1]: expected an object with w2c, K, width, height"),
])
def test_camera_json_refusals(tmp_path, edit, problem):
    assert refusal(camera_input, _camera_json(tmp_path, edit)) == problem


@pytest.mark.parametrize("fmt, line, token, problem", [
    ("tum", 2, "1e300", "line 2: value 1e+300 beyond +-1e+08"),
    ("tum", 2, "1e400", "line 2: non-finite value (nan or inf)"),
    ("tum", 3, "x" * 100, f"line 3: not a number: {'x' * 37!r}..."),
    ("re10k", 2, "Infinity", "line 2: non-finite value (nan or inf)"),
    ("re10k", 3, "1e9", "line 3: value 1e+09 beyond +-1e+08"),
])
def test_camera_text_refusals(tmp_path, fmt, line, token, problem):
    text = (format_tum if fmt == "tum" else format_re10k)(_trajectory(), fps=8.0)
    lines = [row.split() for row in text.splitlines()]
    lines[line - 1][2] = token
    path = tmp_path / "camera.txt"
    path.write_text("\n".join(" ".join(row) for row in lines))
    assert refusal(camera_input, path) == problem


def test_camera_counts_and_size_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory, "MAX_CAMERAS", 2)
    path = tmp_path / "camera.txt"
    path.write_text(format_tum(_trajectory(3)))
    assert refusal(camera_input, path) == "line 4: more than 2 cameras"
    assert refusal(camera_input, _camera_json(tmp_path, lambda d: None)) == (
        "3 frames, more than 2 cameras")
    with open(path, "r+b") as f:
        f.truncate(trajectory.MAX_FILE_BYTES + 1)
    assert refusal(camera_input, path) == (
        f"{trajectory.MAX_FILE_BYTES + 1} bytes, more than a trajectory file may hold "
        f"({trajectory.MAX_FILE_BYTES} bytes)")


def _ply(media, edit) -> bytes:
    end = media[".ply"].index(b"end_header\n")
    header = media[".ply"][:end].decode()
    return edit(header).encode() + media[".ply"][end:]


@pytest.mark.parametrize("count", [10**12, 10**30])
def test_ply_vertex_count_beyond_the_file_is_refused_unread(tmp_path, media, count):
    path = tmp_path / "g.ply"
    path.write_bytes(_ply(media, lambda h: h.replace("vertex 3", f"vertex {count}")))
    assert refusal(load_ply, path) == (
        f"truncated: the header declares {count} vertices of 68 bytes, the file holds 204 bytes")


def test_ply_malformed_header_and_values(tmp_path, media):
    path = tmp_path / "g.ply"
    line = "element vertex " + "9" * 41
    path.write_bytes(_ply(media, lambda h: h.replace("element vertex 3", line)))
    assert refusal(load_ply, path) == f"bad PLY element line {line!r}"
    line = "property " + "f" * 80 + " scale_0"
    path.write_bytes(_ply(media, lambda h: h.replace("property float scale_0", line)))
    assert refusal(load_ply, path) == f"bad PLY property line {line[:57]!r}..."
    path.write_bytes(_ply(media, lambda h: h.replace("property float scale_0\n", "")))
    assert refusal(load_ply, path) == "not a 3DGS PLY: vertex properties missing: scale_0"
    data = bytearray(media[".ply"])
    at = data.index(b"end_header\n") + len(b"end_header\n") + 68 + 4  # vertex 1's y
    data[at:at + 4] = struct.pack("<f", float("nan"))
    path.write_bytes(bytes(data))
    assert refusal(load_ply, path) == "vertex 1: means not finite (NaN, inf, or beyond float32)"


def _png(width: int, height: int) -> bytes:
    """A PNG whose header (with a correct checksum) claims ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _long_idat(png: bytes) -> bytes:
    """``png`` with its image data chunk claiming 2 GB (the file holds a few hundred bytes)."""
    at = png.index(b"IDAT") - 4
    return png[:at] + struct.pack(">I", 2**31 - 1) + png[at + 4:]


@pytest.mark.parametrize("name, data, problem", [
    ("a.png", lambda m: b"", "not a readable image (empty file, 0 bytes)"),
    ("a.png", lambda m: bytes(range(256)) * 4,
     "not a readable image (unknown format or not an image)"),
    ("a.png", lambda m: m[".png"][:40], "not a readable image ("),
    ("a.jpg", lambda m: m[".jpg"][:200], "not a readable image ("),
    ("a.png", lambda m: m[".mp4"], "not a readable image (unknown format or not an image)"),
    ("a.png", lambda m: _png(60000, 60000), "not a readable image ("),  # 3.6 gigapixels
    ("a.png", lambda m: _png(2**31 - 1, 1), "not a readable image ("),
])
def test_image_refusals(tmp_path, media, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data(media))
    assert refusal(lambda p: load_image(p, name="image=a"), path).startswith(problem)


def test_a_png_chunk_claiming_gigabytes_costs_only_the_file(tmp_path, media):
    """The pixels are all there, so the image reads; the 2 GB its chunk claims are not
    allocated."""
    path = tmp_path / "a.png"
    path.write_bytes(_long_idat(media[".png"]))
    image = run_reader(lambda p: load_image(p, name="image=a"), path, "image=a")
    assert image.rgb.shape == (6, 8, 3)


@pytest.mark.parametrize("name, data, problem", [
    ("v.mp4", lambda m: b"", "empty file (0 bytes)"),
    ("v.mp4", lambda m: bytes(range(256)) * 8, "no decodable video frames ("),
    ("v.mp4", lambda m: m[".mp4"][:300], "no decodable video frames ("),
    ("v.png", lambda m: m[".mp4"], "is an image, not a video (give a video or a folder of frames)"),
])
def test_video_refusals(tmp_path, media, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data(media))
    assert refusal(video_input, path).startswith(problem)
