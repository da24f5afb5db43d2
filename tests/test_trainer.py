"""The trainer on tiny random parts and an in-test clip: it learns, resumes exactly, checkpoints
atomically, and its checkpoint loads into the animate pipeline."""

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

from dreamdance.animate.components import (
    cogvideox_components,
    save_tiny_weights,
    tiny_components,
)
from dreamdance.animate.pipeline import DreamDancePipeline
from dreamdance.errors import InputError
from dreamdance.train import checkpoint
from dreamdance.train.sample import TrainSample, collate
from dreamdance.train.trainer import Trainer, check_frames, step_generator

pytestmark = pytest.mark.usefixtures("one_thread")

F, H, W = 9, 32, 32
FAST = ["model=tiny", "train.steps=4", "train.lr=1e-3", "train.warmup_steps=0",
        "train.lr_scheduler=constant", "train.mixed_precision=no",
        "train.gradient_checkpointing=false", "train.trainable=full", "train.num_workers=0",
        "train.tensorboard=false", "train.checkpoint.every=0", "train.validation.every=0",
        f"train.data.frames={F}", f"train.data.height={H}", f"train.data.width={W}",
        "train.log_every=0", "train.black_box_steps=0", "train.checkpoint.export_dtype=fp32"]


@pytest.fixture(autouse=True)
def fresh_accelerate():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def config(*overrides):
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        return compose("config", overrides=["stage=train", *FAST, *overrides]).train


def make_sample(seed: int = 0) -> TrainSample:
    """A square moving across a striped background; its pose is the square's centre line."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W] / H
    scene = np.stack([0.5 + 0.3 * np.sin(6 * xx), 0.4 + 0.2 * yy, 0.3 + 0 * xx], -1)
    video = np.repeat(scene[None], F, 0).astype(np.float32)
    mask = np.zeros((F, H, W), np.float32)
    body = np.zeros((F, H, W, 3), np.float32)
    colour = rng.uniform(0.2, 1.0, 3)
    for t in range(F):
        x = 4 + (t * 2 + seed) % (W - 14)
        video[t, 8:20, x:x + 10] = colour
        mask[t, 6:22, x - 2:x + 12] = 1
        body[t, 8:20, x + 5] = 1
    background = video * (1 - mask[..., None]) + 0.5 * mask[..., None]
    character = np.zeros((H, W, 4), np.float32)
    character[8:20, 4:14, :3] = colour
    character[8:20, 4:14, 3] = 1
    return TrainSample(name=f"clip{seed}", video=video, background=background.astype(np.float32),
                       boxes=mask.copy(), mask=mask,
                       poses={"face": np.zeros_like(body), "hand": np.zeros_like(body),
                              "body": body},
                       character=character)


class Samples(torch.utils.data.Dataset):
    def __init__(self, variants: int = 1):
        self.items = [make_sample(i).tensors() for i in range(variants)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index % len(self.items)]


def trainer(tmp_path, dataset=None, validation=None, *overrides):
    return Trainer(config(*overrides), tiny_components("1.0", seed=0), dataset or Samples(),
                   tmp_path / "train", seed=0, validation=validation, cpu=True)


def fixed_loss(t: Trainer, dataset, draws: int = 8) -> float:
    """The loss at fixed noise, timesteps and dropout (the same before and after training)."""
    enc = t.encode(collate([dataset[0]]), black_boxes=False)
    with torch.no_grad():
        return float(np.mean([t.loss(enc, step_generator(1234, k, 0)).item()
                              for k in range(draws)]))


def test_overfits_one_clip(tmp_path):
    data = Samples()
    t = trainer(tmp_path, data, None, "train.steps=50", "train.drop_pose=0",
                "train.drop_character=0")
    before = fixed_loss(t, data)
    losses = t.train()
    after = fixed_loss(t, data)
    assert len(losses) == 50 and all(np.isfinite(losses))
    assert after < 0.5 * before, (before, after)


def test_resume_continues_exactly(tmp_path):
    overrides = ("train.steps=4", "train.checkpoint.every=2", "train.grad_accum=2",
                 "train.warmup_steps=3", "train.lr_scheduler=constant_with_warmup",
                 "train.ema.enabled=true", "train.ema.decay=0.9", "train.trainable=lora",
                 "train.lora.rank=4")
    straight = trainer(tmp_path / "a", Samples(3), None, *overrides)
    full = straight.train()
    found = checkpoint.checkpoints(tmp_path / "a/train/checkpoints")
    assert [s for s, _ in found] == [2, 4]

    resumed = trainer(tmp_path / "b", Samples(3), None, *overrides)
    resumed.resume(found[0][1])
    assert resumed.step == 2
    rest = resumed.train()
    assert len(rest) == 2
    np.testing.assert_allclose(rest, full[2:], rtol=1e-6)
    a = checkpoint.trainable_state(straight.acc.unwrap_model(straight.model))
    b = checkpoint.trainable_state(resumed.acc.unwrap_model(resumed.model))
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_checkpoint_is_atomic_pruned_and_refuses_another_model(tmp_path):
    t = trainer(tmp_path, None, None, "train.steps=3", "train.checkpoint.every=1",
                "train.checkpoint.keep=2", "train.trainable=lora", "train.lora.rank=2")
    t.train()
    folder = tmp_path / "train/checkpoints"
    assert [s for s, _ in checkpoint.checkpoints(folder)] == [2, 3]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries
    state = json.loads((folder / "step-000003/state.json").read_text())
    assert state["step"] == 3 and state["samples"] == 3
    other = trainer(tmp_path / "full", None, None, "train.trainable=full")
    with pytest.raises(InputError, match="train.trainable=lora"):
        other.resume(folder / "step-000003")


def test_lora_checkpoint_loads_into_the_animate_pipeline(tmp_path):
    t = trainer(tmp_path, None, None, "train.steps=3", "train.checkpoint.every=3",
                "train.trainable=lora", "train.lora.rank=4", "train.lr=1e-2")
    t.train()
    model = t.acc.unwrap_model(t.model)
    # LoRA moved away from zero, so the merged export differs from the base weights
    assert any(p.abs().max() > 0 for n, p in model.named_parameters() if "lora_B" in n)

    base, clip = save_tiny_weights(tmp_path / "weights", "1.0", seed=0)
    loaded = cogvideox_components(str(base), str(tmp_path / "train/checkpoints/step-000003"),
                                  str(clip), "fp32")

    sample = make_sample()
    enc = t.encode(collate([sample.tensors()]), black_boxes=False)
    x = torch.randn(enc["latents"].shape, generator=torch.Generator().manual_seed(0))
    args = dict(hidden_states=x, background=enc["background"], timestep=torch.tensor([500]),
                image_embeds=enc["image_embeds"], pose=enc["pose"], character=enc["character"],
                image_rotary_emb=model.rotary_embedding(x.shape[1], x.shape[3], x.shape[4]))
    model.eval()
    with torch.no_grad():
        expected = model(**args, return_dict=False)[0]
        got = loaded["transformer"](**args, return_dict=False)[0]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    pipe = DreamDancePipeline(**loaded)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(character=sample.character, background_video=sample.background,
               mask_video=sample.mask, pose_videos=sample.poses, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0))
    assert np.asarray(out.frames).shape == (1, F, H, W, 3)


def test_validation_tensorboard_and_gate_values(tmp_path):
    t = trainer(tmp_path, None, make_sample(), "train.steps=2", "train.validation.every=2",
                "train.validation.steps=1", "train.tensorboard=true", "train.log_every=1")
    t.train()
    from dreamdance.media import read_video

    video = read_video(tmp_path / "train/validation/step-000002.mp4")
    assert video.frames.shape == (F, H, 2 * W, 3)  # target | output
    assert list((tmp_path / "train/logs").rglob("events.out.tfevents*"))
    gates = t.gate_values()
    assert len(gates) == 20 and all(abs(v) < 1 for v in gates.values())
    # the gates moved off zero after two steps of training
    assert any(v != 0 for v in gates.values())


def test_black_boxes_only_in_the_first_steps(tmp_path, monkeypatch):
    t = trainer(tmp_path, None, None, "train.steps=3", "train.black_box_steps=2")
    seen = []
    encode = t.encode
    monkeypatch.setattr(t, "encode", lambda batch, black_boxes: (seen.append(black_boxes),
                                                                 encode(batch, black_boxes))[1])
    t.train()
    assert seen == [True, True, False]
    # a black-box background encodes differently from the plain one
    batch = collate([make_sample().tensors()])
    boxed, plain = encode(batch, True), encode(batch, False)
    assert not torch.allclose(boxed["background"], plain["background"])
    torch.testing.assert_close(boxed["latents"], plain["latents"])


def test_frame_counts_the_model_cannot_take_are_refused():
    model = tiny_components("1.5")["transformer"]
    check_frames(13, 32, 32, model, 16)  # 4 latent frames: even
    with pytest.raises(InputError, match=r"train.data.frames=9: .* \(e.g. 5 or 13\)"):
        check_frames(9, 32, 32, model, 16)  # 3 latent frames: odd
    with pytest.raises(InputError, match="train.data.frames=48"):
        check_frames(48, 32, 32, tiny_components("1.0")["transformer"], 16)
    with pytest.raises(InputError, match="train.data.width=40"):
        check_frames(13, 32, 40, model, 16)


def test_cached_latents_train_like_encoding_on_the_fly(tmp_path):
    args = ("train.steps=2", "train.black_box_steps=1", "train.cache.samples=2")
    cached = trainer(tmp_path / "a", Samples(3), None, *args)
    with_cache = cached.train()
    files = sorted(p.name for p in (tmp_path / "a/train/cache").glob("*.safetensors"))
    assert files == ["0000000.safetensors", "0000001.safetensors"]
    plain = trainer(tmp_path / "b", Samples(3), None, "train.steps=2", "train.black_box_steps=1")
    np.testing.assert_allclose(with_cache, plain.train(), rtol=1e-5)  # both black-box variants

    from dreamdance.train import cache

    folder = tmp_path / "a/train/cache"
    stamp = (folder / "0000000.safetensors").stat().st_mtime_ns
    again = trainer(tmp_path / "a", Samples(3), None, *args)
    again.build_cache()  # the same dataset, config and model: kept
    assert (folder / "0000000.safetensors").stat().st_mtime_ns == stamp
    cache.prepare(folder, "another-key", True)  # another dataset, config or model: emptied
    assert not (folder / "0000000.safetensors").exists()


def test_training_and_inference_build_the_same_conditions(tmp_path):
    """One clip encoded by the trainer and by a pipeline call (seen at the transformer's
    inputs): the same background and mask latents, pose latents in the same channel order,
    the same character latent and CLIP tokens, and the same ofs."""
    t = trainer(tmp_path)
    sample = make_sample(3)
    enc = t.encode(collate([sample.tensors()]), black_boxes=False)
    pipe = DreamDancePipeline(**tiny_components("1.0", seed=0))
    pipe.transformer.load_state_dict(t.acc.unwrap_model(t.model).state_dict())
    seen = {}
    model = pipe.transformer
    condition_tokens, forward = model.condition_tokens, model.forward

    def spy_tokens(pose, character):
        seen.update(pose=pose, character=character)
        return condition_tokens(pose, character)

    def spy_forward(*args, **kwargs):
        seen.update(background=kwargs["background"], image_embeds=kwargs["image_embeds"],
                    ofs=kwargs["ofs"])
        return forward(*args, **kwargs)

    model.condition_tokens, model.forward = spy_tokens, spy_forward
    pipe(character=sample.character, background_video=sample.background,
         mask_video=sample.mask, pose_videos=sample.poses, num_inference_steps=1,
         guidance_scale=1.0, output_type="latent")
    for key in ("background", "pose", "character", "image_embeds"):
        torch.testing.assert_close(seen[key].float(), enc[key], rtol=1e-5, atol=1e-5, msg=key)
    assert seen["ofs"] is None and model.ofs_condition() is None  # the 1.0 layout takes none
    assert enc["pose"].shape[2] == 48 and enc["background"].shape[2] == 32
    # the channel order is POSE_KEYS's: only the body video is drawn in this clip
    body = pipe.encode_video(torch.from_numpy(sample.poses["body"]).permute(0, 3, 1, 2)[None])
    torch.testing.assert_close(enc["pose"][:, :, 32:], body.float(), rtol=1e-5, atol=1e-5)
