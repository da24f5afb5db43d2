"""stage=train end to end on a synthetic dataset with model=tiny: one process and two (gloo),
validation, refusing to overwrite checkpoints, resuming, and bad configs."""

import socket
import subprocess
import sys

import pytest
from runner import refused
from synthetic_data import make_dataset

from dreamdance.media import read_video
from dreamdance.train import checkpoint
from dreamdance.train.layout import read_metadata, write_metadata

TINY = ["stage=train", "model=tiny", "device=cpu", "train.data.frames=9",
        "train.data.height=32", "train.data.width=32", "train.num_workers=0",
        "train.trainable=lora", "train.lora.rank=2", "train.checkpoint.export_dtype=fp32",
        "train.checkpoint.every=2", "train.validation.every=2", "train.validation.steps=1",
        "train.log_every=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("data") / "data", clips=3, frames=24,
                        size=(48, 64), corrupt=1)
    records = read_metadata(root)
    records[0] = records[0].__class__(**{**records[0].__dict__, "split": "val"})
    write_metadata(root, records)
    return root


def cli(*args, launcher=(sys.executable, "-m")):
    return subprocess.run([*launcher, "dreamdance.run", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_trains_validates_refuses_and_resumes(data, tmp_path):
    out = tmp_path / "run"
    first = cli(*TINY, f"data={data}", f"out={out}", "train.steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = out / "train/checkpoints"
    assert [s for s, _ in checkpoint.checkpoints(folder)] == [2]
    assert (folder / "step-000002/transformer/config.json").is_file()
    assert "skipped clips" in first.stdout + first.stderr  # the corrupt clip, counted
    video = read_video(out / "train/validation/step-000002.mp4")
    assert video.frames.shape == (9, 32, 64, 3)  # target | output
    assert list((out / "train/logs").rglob("events.out.tfevents*"))

    assert "train.resume=latest" in refused(*TINY, f"data={data}", f"out={out}",
                                            "train.steps=2")

    more = cli(*TINY, f"data={data}", f"out={out}", "train.steps=3", "train.resume=latest")
    assert more.returncode == 0, more.stderr[-3000:]
    assert "resumed from" in more.stdout + more.stderr
    assert [s for s, _ in checkpoint.checkpoints(folder)] == [2, 3]


@pytest.mark.parametrize("args,message", [
    (["train.data.frames=8"], "train.data.frames=8: the model takes 4k + 1 frames"),
    (["train.data.width=40"], "train.data.width=40: must be a multiple of 16"),
    (["train.trainable=half"], "train.trainable=half: must be one of lora, full"),
    (["train.resume=/nowhere"], "train.resume=/nowhere: not a checkpoint folder"),
    (["model=preview"], "model=preview: cannot be trained"),
])
def test_bad_configs_are_refused_before_the_first_step(data, tmp_path, args, message):
    out = tmp_path / "run"
    assert message in refused(*TINY, f"data={data}", f"out={out}", "train.steps=1", *args)
    assert not (out / "train/checkpoints").exists()


def test_missing_data_is_one_line(tmp_path):
    assert "data: missing" in refused(*TINY, f"out={tmp_path / 'run'}")
    assert "not a folder" in refused(*TINY, f"data={tmp_path / 'none'}", f"out={tmp_path / 'run'}")


@pytest.mark.slow
def test_two_processes_gloo(data, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = (sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
                "--main_process_port", str(port), "-m")
    out = tmp_path / "run"
    r = cli(*TINY, f"data={data}", f"out={out}", "train.steps=2", "train.validation.every=0",
            "train.tensorboard=false", launcher=launcher)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = out / "train/checkpoints/step-000002"
    assert sorted(p.name for p in ckpt.glob("random_states_*.pkl")) == [
        "random_states_0.pkl", "random_states_1.pkl"]  # both processes took part
    assert checkpoint.read_state(ckpt)["samples"] == 4  # 2 steps x 2 processes x batch 1
