"""tools.prepare_data: clips, poses and masks from tiny synthetic videos with pose files, every
skip reason counted, whole sources per split, scene clips, and bad arguments (exit 2)."""

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from dreamdance.media import read_video
from dreamdance.motion.mask import pose_masks
from dreamdance.motion.poses import read_poses
from dreamdance.train import prepare as prep
from dreamdance.train import prepare_run, prepare_units
from dreamdance.train.layout import read_metadata
from tools import prepare_data
from tools.synthetic_videos import DISTRACTOR, SIZE, add_video, figure_frames, skeleton_poses

pytestmark = pytest.mark.usefixtures("one_thread")


def run_tool(*args) -> list[str]:
    return prepare_data.run([str(a) for a in args])


def clip_counts(out: Path) -> dict[str, int]:
    return {r.name: r.frames for r in read_metadata(out)}


# --------------------------------------------------------------------------------------------
# Pieces


@pytest.mark.parametrize("n, clip, least, expected", [
    (20, 8, 5, [(0, 8), (8, 16)]),
    (21, 8, 5, [(0, 8), (8, 16), (16, 21)]),
    (16, 8, 8, [(0, 8), (8, 16)]),
    (4, 8, 5, []),
])
def test_clip_spans(n, clip, least, expected):
    assert prep.clip_spans(n, clip, least) == expected


def test_resample_index_halves_the_rate():
    index = prep.resample_index(20, 8.0, 4.0)
    assert index.tolist() == list(range(0, 20, 2))
    assert prep.resample_index(5, 8.0, None).tolist() == [0, 1, 2, 3, 4]


def test_fit_frames_even_sides_and_scale():
    frames = np.zeros((2, 45, 91, 3), np.uint8)
    assert prep.fit_frames(frames, 768).shape == (2, 44, 90, 3)
    assert prep.fit_frames(frames, 30).shape == (2, 14, 30, 3)  # 91 -> 30, 45 -> 15 -> 14


def test_val_sources_seeded_and_independent_of_order():
    names = [f"v{i}.mp4" for i in range(20)]
    a = prepare_run.val_sources(names, 0.25, seed=3)
    assert len(a) == 5 and a <= set(names)
    assert prepare_run.val_sources(names[::-1], 0.25, seed=3) == a
    assert len(prepare_run.val_sources(names[:3], 0.05, seed=0)) == 1  # at least one
    assert prepare_run.val_sources(names, 0.0, seed=0) == set()


# --------------------------------------------------------------------------------------------
# The tool end to end


def test_clips_layout_and_every_skip_reason(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 20)                   # clips of 8, 8; the tail of 4 dropped
    add_video(videos, "b", 13)                   # clips of 8, 5
    add_video(videos, "c", 10, poses=None)       # no pose source with pose=none
    add_video(videos, "d", 10, poses="empty")    # its only clip has no confident body
    add_video(videos, "e", 10, poses="short")    # pose file of the wrong length
    add_video(videos, "f", 3)                    # shorter than min_frames
    (videos / "g.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    lines = run_tool(f"videos={videos}", f"out={out}", "clip_frames=8", "min_frames=5",
                     "pose=none", "segmenter=none", "val=0")
    records = read_metadata(out)
    assert {r.name: r.frames for r in records} == {"a-000": 8, "a-001": 8, "b-000": 8,
                                                   "b-001": 5}
    for r in records:
        assert (r.kind, r.split, r.mask, r.fps) == ("person", "train", None, 8.0)
        assert r.source == r.name.split("-")[0] + ".mp4"
        video = read_video(out / r.video)
        poses = read_poses(out / r.poses)
        assert len(video.frames) == len(poses) == r.frames
        assert video.frames.shape[1:3] == (r.height, r.width) == (SIZE, SIZE)
        assert (poses.width, poses.height) == (SIZE, SIZE)
    # b-001 holds source frames 8..12: its poses are the source's, not the first clip's
    src = skeleton_poses(13)
    got = read_poses(out / "clips/b-001/poses.json")
    np.testing.assert_allclose(got.body, src.body[8:13], atol=0.01)
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["a-000", "a-001", "b-000",
                                                                 "b-001"]
    summary = "\n".join(lines)
    assert lines[0] == "4 clips in metadata.jsonl (4 person/train) from 7 source videos"
    assert lines[-1] == "this run: 7 videos prepared, 0 already done, 4 clips written, 5 skipped"
    for reason in (prep.UNREADABLE, prep.TOO_SHORT, prep.POSE_FILE, prep.NO_POSE_SOURCE,
                   prep.FEW_POSES):
        assert f"1 x {reason}" in summary, summary


def test_resample_and_downscale_keep_poses_on_the_figure(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 20)
    run_tool(f"videos={videos}", f"out={out}", "clip_frames=10", "min_frames=10", "fps=4",
             "max_side=32", "segmenter=none", "val=0")
    (record,) = read_metadata(out)
    assert (record.frames, record.fps, record.width, record.height) == (10, 4.0, 32, 32)
    poses = read_poses(out / record.poses)
    src = skeleton_poses(20)
    assert (poses.width, poses.height, poses.fps) == (32, 32, 4.0)
    np.testing.assert_allclose(poses.body[..., :2], src.body[0:20:2, ..., :2] / 2, atol=0.01)
    assert len(read_video(out / record.video).frames) == 10


def test_val_split_holds_whole_sources_and_scenes_are_scene_clips(tmp_path):
    videos, scenes, out = tmp_path / "videos", tmp_path / "scenes", tmp_path / "data"
    for i in range(6):
        add_video(videos, f"v{i}", 12)
    add_video(scenes, "room", 12, poses=None)
    run_tool(f"videos={videos}", f"out={out}", f"scenes={scenes}", "clip_frames=6",
             "min_frames=6", "segmenter=none", "val=0.4", "seed=1")
    records = read_metadata(out)
    assert len(records) == 14
    splits = defaultdict(set)
    for r in records:
        splits[r.source].add(r.split)
    assert all(len(s) == 1 for s in splits.values()), splits
    val = {src for src, s in splits.items() if s == {"val"}}
    assert val == prepare_run.val_sources(list(splits), 0.4, seed=1) and 1 <= len(val) < 7
    scene = [r for r in records if r.source == "room.mp4"]
    assert [(r.kind, r.poses, r.mask, r.frames) for r in scene] == [("scene", None, None, 6)] * 2
    assert not (out / "clips/room-000/poses.json").exists()


def test_grabcut_masks_cover_the_figure(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 6)
    run_tool(f"videos={videos}", f"out={out}", "clip_frames=6", "min_frames=6",
             "segmenter=grabcut", "segmenter.iterations=3", "val=0")
    (record,) = read_metadata(out)
    assert record.mask == "clips/a-000/mask.mp4"
    mask = read_video(out / record.mask).frames[..., 0] >= 128  # [T, H, W]
    figure = pose_masks(skeleton_poses(6), dilate=0.02)
    assert mask.shape == figure.shape
    for t in range(len(mask)):
        inter = (mask[t] & figure[t]).sum()
        union = (mask[t] | figure[t]).sum()
        assert inter / union > 0.7, (t, inter, union)


def test_rerun_resumes_other_settings_refused_then_force_rebuilds(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 8)
    args = [f"videos={videos}", f"out={out}", "segmenter=none"]
    run_tool(*args, "clip_frames=8", "min_frames=8")
    assert sorted(clip_counts(out)) == ["a-000"]
    before = (out / "metadata.jsonl").read_bytes()
    lines = run_tool(*args, "clip_frames=8", "min_frames=8")  # everything recorded: nothing to do
    assert lines[-1] == "this run: 0 videos prepared, 1 already done, 0 clips written, 0 skipped"
    assert (out / "metadata.jsonl").read_bytes() == before
    with pytest.raises(prepare_data.InputError, match=r"^clip_frames=4: differs .* "
                                                       r"clip_frames=8; .*force=true"):
        run_tool(*args, "clip_frames=4", "min_frames=4")
    with pytest.raises(prepare_data.InputError, match=r"^segmenter=.*GrabCut.*segmenter=null"):
        run_tool(f"videos={videos}", f"out={out}", "clip_frames=8", "min_frames=8")
    (out / "clips/old-000").mkdir()
    run_tool(*args, "force=true", "clip_frames=4", "min_frames=4")
    assert sorted(clip_counts(out)) == ["a-000", "a-001"]
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["a-000", "a-001"]


def test_a_dataset_without_its_record_is_rebuilt_only_with_force(tmp_path):
    """A dataset made by hand or by an earlier version (metadata.jsonl, no prepare.json) cannot
    be resumed: refused, and rebuilt with force=true."""
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 8)
    (out / "clips/old-000").mkdir(parents=True)
    (out / "metadata.jsonl").write_text("")
    args = [f"videos={videos}", f"out={out}", "segmenter=none", "clip_frames=8", "min_frames=8"]
    with pytest.raises(prepare_data.InputError, match="cannot resume .*force=true"):
        run_tool(*args)
    run_tool(*args, "force=true")
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["a-000"]


# --------------------------------------------------------------------------------------------
# Bad arguments: one line, exit 2, nothing written


@pytest.mark.parametrize("extra, named", [
    (["out=OUT"], "videos="),                                   # missing videos=
    (["videos=VIDEOS", "out=OUT", "colour=red"], "colour"),
    (["videos=VIDEOS", "out=OUT", "clip_frames=abc"], "clip_frames=abc"),
    (["videos=VIDEOS", "out=OUT", "clip_frames=8", "min_frames=9"], "min_frames=9"),
    (["videos=VIDEOS", "out=OUT", "val=1.5"], "val=1.5"),
    (["videos=VIDEOS", "out=OUT", "force=maybe"], "force=maybe"),
    (["videos=NOPE", "out=OUT"], "videos="),
    (["videos=VIDEOS", "out=OUT", "segmenter=alpha"], "segmenter=alpha"),
    (["videos=VIDEOS", "out=OUT", "segmenter=unknown"], "segmenter=unknown"),
    (["videos=VIDEOS", "out=OUT", "segmenter.iterations=0"], "segmenter.iterations=0"),
    (["videos=VIDEOS", "out=OUT", "segmenter.nope=1"], "segmenter.nope"),
    (["videos=VIDEOS", "out=OUT", "pose=openpose"], "pose=openpose"),
    (["videos=VIDEOS", "out=OUT", "segmenter=birefnet"], "weights.birefnet"),
    (["videos=VIDEOS", "out=OUT", "scenes=VIDEOS"], "same name stem"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, named):
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 8)
    args = [a.replace("VIDEOS", str(videos)).replace("OUT", str(out))
            .replace("NOPE", str(tmp_path / "nope")) for a in extra]
    with pytest.raises(SystemExit) as e:
        prepare_data.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err
    assert not out.exists()


def test_video_without_pose_file_needs_a_configured_backend(tmp_path):
    """The default pose backend (DWPose) without its models is refused up front, not per
    video, when a video has no pose file; the command line exits 2."""
    videos, out = tmp_path / "videos", tmp_path / "data"
    add_video(videos, "a", 8, poses=None)
    result = subprocess.run([sys.executable, "-m", "tools.prepare_data", f"videos={videos}",
                             f"out={out}", "segmenter=none"], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pose." in lines[0], lines
    assert not out.exists()


def test_figure_frames_are_what_the_mask_test_assumes():
    """The synthetic figure is red inside its hull, apart from the red block, and the rest is
    green; the figure lies off-centre, where GrabCut's default box would not find it alone."""
    seq = skeleton_poses(2)
    frames = figure_frames(seq)
    inside = pose_masks(seq, dilate=0.02)[0]
    block = np.zeros_like(inside)
    block[DISTRACTOR] = True
    assert inside.mean() > 0.05 and not (inside & block).any()
    assert (frames[0][inside | block][:, 0] > 150).all()
    assert (frames[0][~(inside | block)][:, 1] > 100).all()


def test_force_never_clears_a_folder_that_is_not_a_dataset(tmp_path):
    out = tmp_path / "home"
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "holiday.mp4").write_bytes(b"mine")
    for force in (True, False):
        with pytest.raises(prepare_data.InputError, match="holds no dataset"):
            prepare_units.check_out(out, force=force)
    assert (out / "clips" / "holiday.mp4").read_bytes() == b"mine"
    (out / "metadata.jsonl").write_text("")
    assert prepare_units.check_out(out, force=True) == prepare_units.REBUILD  # a dataset
