"""Training state that is safe to reuse: resuming only checkpoints this output folder wrote (their
files unchanged), force=true setting an earlier run's checkpoints aside, a latent cache that
deletes only its own files, and an EMA that resumes exactly."""

import shutil

import pytest
import torch
from runner import refused, run
from synthetic_data import make_dataset
from test_trainer import Samples, config

from dreamdance.animate.components import tiny_components
from dreamdance.errors import InputError
from dreamdance.io import read_json
from dreamdance.train import cache, checkpoint
from dreamdance.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ("train.steps=3", "train.checkpoint.every=1", "train.checkpoint.keep=0",
       "train.trainable=lora", "train.lora.rank=2", "train.ema.enabled=true",
       "train.ema.decay=0.9")


def make_trainer(folder, *overrides) -> Trainer:
    """A tiny trainer (LoRA, EMA on, a checkpoint after every step) in a fresh accelerate state."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return Trainer(config(*RUN, *overrides), tiny_components("1.0", seed=0), Samples(2), folder,
                   seed=0, cpu=True)


@pytest.fixture(scope="module")
def straight(one_thread, tmp_path_factory) -> Trainer:
    """Three uninterrupted steps, checkpoints ``step-000001`` … ``step-000003``."""
    t = make_trainer(tmp_path_factory.mktemp("straight") / "train")
    t.train()
    return t


@pytest.fixture
def copied(straight, tmp_path):
    """A copy of the straight run's checkpoints folder (manifest included), to tamper with."""
    return shutil.copytree(straight.folder / "checkpoints", tmp_path / "checkpoints")


# -- EMA ---------------------------------------------------------------------------------------

def test_resumed_ema_equals_an_uninterrupted_one(straight, tmp_path):
    """Bit-exact: the trainable weights of both runs are equal at every step (the existing
    resume test), and the restored EMA takes the same steps with the same decay."""
    resumed = make_trainer(tmp_path / "train")
    resumed.resume(straight.folder / "checkpoints/step-000001")
    assert resumed.ema.optimization_step == 1
    resumed.train()
    assert resumed.ema.optimization_step == straight.ema.optimization_step == 3
    for a, b in zip(straight.ema.shadow_params, resumed.ema.shadow_params, strict=True):
        assert torch.equal(a, b)
    assert read_json(straight.folder / "checkpoints/step-000003/state.json")["ema"][
        "optimization_step"] == 3


# -- resuming only what this output folder wrote -----------------------------------------------

def test_manifest_records_every_file_of_each_checkpoint(straight):
    folder = straight.folder / "checkpoints"
    recorded = checkpoint.read_manifest(folder)
    assert sorted(recorded) == ["step-000001", "step-000002", "step-000003"]
    files = recorded["step-000003"]
    assert files == checkpoint.file_hashes(folder / "step-000003")
    assert {"state.json", "trainable.safetensors", "ema.safetensors", "random_states_0.pkl",
            "transformer/config.json"} <= set(files)
    checkpoint.verify(folder / "step-000003")


CHANGED = r"files changed since it was saved \({}\)"
PICKLE = b"cos\nsystem\n"


@pytest.mark.parametrize("tamper,message", [
    pytest.param(lambda p: (p / "random_states_0.pkl").write_bytes(PICKLE),
                 CHANGED.format("random_states_0.pkl"), id="altered"),
    pytest.param(lambda p: (p / "custom_checkpoint_0.pkl").write_bytes(PICKLE),
                 CHANGED.format("custom_checkpoint_0.pkl"), id="added"),
    pytest.param(lambda p: (p / "optimizer.bin").unlink(), CHANGED.format("optimizer.bin"),
                 id="missing"),
    pytest.param(lambda p: shutil.move(p, p.with_name("step-000009")),
                 "not recorded in .*manifest.json", id="unrecorded"),
])
def test_a_changed_or_unrecorded_checkpoint_is_refused(copied, tamper, message):
    path = copied / "step-000002"
    tamper(path)
    if not path.exists():
        path = path.with_name("step-000009")
    with pytest.raises(InputError, match=f"train.resume=.*: {message}: resuming unpickles"):
        checkpoint.verify(path)


def test_resume_loads_nothing_from_a_stranger_unless_told_to(straight, tmp_path, monkeypatch):
    stranger = shutil.copytree(straight.folder / "checkpoints/step-000002",
                               tmp_path / "download/step-000002")
    t = make_trainer(tmp_path / "train")
    load_state = t.acc.load_state
    monkeypatch.setattr(t.acc, "load_state", lambda *a: pytest.fail("loaded an unchecked state"))
    with pytest.raises(InputError, match="not recorded in .*download/manifest.json"):
        t.resume(stranger)
    monkeypatch.setattr(t.acc, "load_state", load_state)
    t.cfg.resume_untrusted = True  # as train.resume_untrusted=true
    t.resume(stranger)
    assert t.step == 2 and t.ema.optimization_step == 2


def test_the_stage_resumes_only_from_its_own_output_folder(straight, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    other = straight.folder / "checkpoints/step-000002"
    message = refused("stage=train", "model=tiny", "device=cpu", f"data={data}",
                      f"out={tmp_path / 'run'}", f"train.resume={other}")
    assert f"train.resume={other}: not a checkpoint of this output folder" in message
    assert "train.resume_untrusted=true" in message


# -- force=true over an earlier run ------------------------------------------------------------

def test_force_sets_the_earlier_checkpoints_aside(straight, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(straight.folder / "checkpoints", out / "train/checkpoints")
    data = make_dataset(tmp_path / "data", clips=1, frames=20, size=(32, 32))
    run("stage=train", "model=tiny", "device=cpu", f"data={data}", f"out={out}", "force=true",
        "train.data.frames=9", "train.data.height=32", "train.data.width=32",
        "train.num_workers=0", "train.trainable=lora", "train.lora.rank=2", "train.steps=1",
        "train.checkpoint.every=1", "train.checkpoint.keep=2", "train.validation.every=0",
        "train.tensorboard=false", "train.checkpoint.export_transformer=false",
        "train.gradient_checkpointing=false", "train.mixed_precision=no")
    folder = out / "train/checkpoints"
    assert [s for s, _ in checkpoint.checkpoints(folder)] == [1]  # this run's, kept
    assert checkpoint.latest(folder) == folder / "step-000001"
    assert sorted(checkpoint.read_manifest(folder)) == ["step-000001"]
    earlier = out / "train/checkpoints.earlier-1"
    assert [s for s, _ in checkpoint.checkpoints(earlier)] == [1, 2, 3]
    assert f"force=true: the earlier run's checkpoints moved to {earlier}" in caplog.text


def test_set_aside_takes_the_next_free_name(copied):
    assert checkpoint.set_aside(copied.parent / "none") is None
    (copied.parent / "checkpoints.earlier-1").mkdir()
    assert checkpoint.set_aside(copied) == copied.parent / "checkpoints.earlier-2"
    assert not copied.exists()


# -- the latent cache deletes only what it wrote -----------------------------------------------

@pytest.mark.parametrize("meta", ['{"key": "x"}', "not json", None])
def test_cache_refuses_a_folder_it_did_not_write(tmp_path, meta):
    folder = tmp_path / "mine"
    folder.mkdir()
    if meta is not None:
        (folder / "meta.json").write_text(meta)
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match=f"train.cache.folder={folder}: holds files the latent "
                                         "cache did not write"):
        cache.prepare(folder, "key", True)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_cache_rebuild_deletes_only_its_own_files(tmp_path):
    folder = cache.prepare(tmp_path / "cache", "a", True)
    cache.write(folder, 0, {k: torch.zeros(2) for k in cache.KEYS})
    (folder / "notes.txt").write_text("mine")
    cache.prepare(folder, "a", True)  # the same key: kept
    assert cache.file(folder, 0).is_file()
    cache.prepare(folder, "b", True)  # another key: its files replaced, nothing else
    assert not cache.file(folder, 0).exists()
    assert (folder / "notes.txt").read_text() == "mine"
    assert read_json(folder / "meta.json") == {"format": cache.FORMAT, "key": "b"}


def test_a_checkpoint_reaches_the_disk_before_its_final_name(tmp_path, monkeypatch):
    """Every file and folder of the checkpoint is fsynced before the rename, then the
    checkpoints folder's entry."""
    import os

    from dreamdance.train import checkpoint as ck

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(b)))
        return real_replace(a, b)

    tmp = ck.temporary(tmp_path / "checkpoints", 3)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "weights.bin").write_bytes(b"w")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = ck.finish(tmp, 3, {"step": 3}, keep=2)
    rename = next(i for i, e in enumerate(events) if e == ("replace", str(final)))
    synced = [p for kind, p in events[:rename] if kind == "fsync"]
    assert str(tmp / "sub" / "weights.bin") in synced and str(tmp / "sub") in synced
    assert str(tmp) in synced
    assert ("fsync", str(tmp_path / "checkpoints")) in events[rename:]
