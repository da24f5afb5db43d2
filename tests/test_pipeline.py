import logging

import numpy as np
import pytest
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput

from dreamdance.animate.components import tiny_components
from dreamdance.animate.pipeline import DreamDancePipeline
from dreamdance.animate.transformer import DreamDanceTransformer3DModel

H, W = 32, 48


class PerPositionTransformer(ModelMixin, ConfigMixin):
    """Stand-in with the DreamDance transformer's signature: a per-position linear map of the
    inputs, so its prediction at a latent position depends on nothing at other positions."""

    @register_to_config
    def __init__(self, patch_size: int = 2, patch_size_t: int | None = None,
                 use_rotary_positional_embeddings: bool = True, attention_head_dim: int = 16,
                 sample_height: int = 8, sample_width: int = 8, ofs_embed_dim: int | None = None,
                 clip_dim: int = 32):
        super().__init__()
        self.latent = torch.nn.Linear(16, 16)
        self.background = torch.nn.Linear(32, 16)
        self.pose = torch.nn.Linear(48, 16)
        self.character = torch.nn.Linear(16, 16)
        self.image = torch.nn.Linear(clip_dim, 16)
        self.calls = []  # (latent frames, keep flags per sample) per call
        self.token_calls = 0

    # the pipeline takes these two from the model, as training does
    rotary_embedding = DreamDanceTransformer3DModel.rotary_embedding
    ofs_condition = DreamDanceTransformer3DModel.ofs_condition

    def condition_tokens(self, pose, character):
        self.token_calls += 1
        return self.pose(pose.movedim(2, -1)), self.character(character.movedim(2, -1))

    def forward(self, hidden_states, background, timestep, image_embeds=None, ofs=None,
                image_rotary_emb=None, attention_kwargs=None, return_dict=True,
                pose_tokens=None, character_tokens=None, keep_pose=None, keep_character=None):
        b, f, c, h, w = hidden_states.shape
        assert background.shape == (b, f, 32, h, w), background.shape
        assert pose_tokens.shape == character_tokens.shape == (b, f, h, w, 16)
        assert (keep_pose is None and keep_character is None) or torch.equal(keep_pose,
                                                                             keep_character)
        assert timestep.shape == (b,), timestep.shape
        assert (ofs is not None) == (self.config.ofs_embed_dim is not None)
        if self.config.use_rotary_positional_embeddings:
            p, p_t = self.config.patch_size, self.config.patch_size_t or 1
            assert f % p_t == 0, f
            assert image_rotary_emb[0].shape[0] == f // p_t * (h // p) * (w // p)
        keep = torch.ones(b, dtype=torch.bool) if keep_pose is None else keep_pose
        self.calls.append((f, tuple(keep.tolist())))

        out = self.latent(hidden_states.movedim(2, -1)) + self.background(background.movedim(2, -1))
        conditions = pose_tokens + character_tokens  # [B, F, h, w, 16]
        out = torch.where(keep[:, None, None, None, None], out + conditions, out)
        out = out + self.image(image_embeds.mean(1))[:, None, None, None]
        out = (out + timestep.float()[:, None, None, None, None] / 1000).movedim(-1, 2)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)


def make_pipeline(patch_size_t=None, ofs_embed_dim=None, transformer=None):
    torch.manual_seed(0)
    transformer = transformer or PerPositionTransformer(patch_size_t=patch_size_t,
                                                        ofs_embed_dim=ofs_embed_dim)
    pipe = DreamDancePipeline(**tiny_components(seed=0, transformer=transformer))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_inputs(frames=10, height=H, width=W, seed=0):
    rng = np.random.default_rng(seed)
    character = rng.random((height, width, 4), dtype=np.float32)
    character[..., 3] = 0
    character[height // 4: 3 * height // 4, width // 3: 2 * width // 3, 3] = 1
    return dict(
        character=character,
        background_video=rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8),
        mask_video=(rng.random((frames, height, width)) > 0.5).astype(np.float32),
        pose_videos={k: rng.random((frames, height, width, 3), dtype=np.float32)
                     for k in ("face", "hand", "body")},
    )


def run(pipe, seed=0, **kwargs):
    args = make_inputs(kwargs.pop("frames", 10)) | dict(num_inference_steps=2, output_type="pt")
    return pipe(**(args | kwargs), generator=torch.Generator().manual_seed(seed)).frames


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


@pytest.mark.parametrize("frames", [7, 10, 1])
def test_returns_exactly_the_requested_frames(pipe, frames):
    video = pipe(**make_inputs(frames), num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0)).frames
    assert video.shape == (1, frames, H, W, 3)
    assert video.dtype == np.float32 and video.min() >= 0 and video.max() <= 1


def test_fewer_frames_than_the_inputs(pipe):
    assert run(pipe, frames=10, num_frames=6).shape == (1, 6, 3, H, W)


def test_deterministic_under_a_seed(pipe):
    a, b, c = run(pipe, seed=1), run(pipe, seed=1), run(pipe, seed=2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-3


def test_one_call_per_step_guidance_as_a_doubled_batch(pipe):
    pipe.transformer.calls.clear()
    pipe.transformer.token_calls = 0
    plain = run(pipe, guidance_scale=1.0)
    assert pipe.transformer.calls == [(4, (True,))] * 2  # 10 frames -> 13 -> 4 latents
    assert pipe.transformer.token_calls == 1  # once per window, not per step
    pipe.transformer.calls.clear()
    guided = run(pipe, guidance_scale=3.0)
    assert pipe.transformer.calls == [(4, (True, False))] * 2  # [conditional, unconditional]
    assert (plain - guided).abs().max() > 1e-3


@pytest.mark.parametrize("guidance_scale", [1.0, 4.0])
def test_windows_agree_with_one_window_for_a_per_position_model(pipe, guidance_scale):
    args = dict(frames=21, guidance_scale=guidance_scale, output_type="latent")  # 6 latents
    whole = run(pipe, **args)
    pipe.transformer.calls.clear()
    windowed = run(pipe, window=2, overlap=1, **args)  # 5 windows
    assert {f for f, _ in pipe.transformer.calls} == {2}
    assert len(pipe.transformer.calls) == 5 * 2  # one call per window and step
    torch.testing.assert_close(windowed, whole)


def test_cogvideox_1_5_layout_pads_latents_to_even():
    pipe = make_pipeline(patch_size_t=2, ofs_embed_dim=64)
    assert [pipe.padded_frames(n) for n in (1, 5, 7, 9, 10, 13)] == [5, 5, 13, 13, 13, 13]
    assert run(pipe, frames=7).shape == (1, 7, 3, H, W)
    pipe.transformer.calls.clear()
    windowed = run(pipe, frames=21, window=4, overlap=2, output_type="latent")
    assert {f for f, _ in pipe.transformer.calls} == {4}
    torch.testing.assert_close(windowed, run(pipe, frames=21, output_type="latent"))
    with pytest.raises(ValueError, match="window"):
        run(pipe, frames=21, window=3, overlap=1)


def test_size_is_rounded_to_a_multiple_of_16_with_a_warning(pipe, caplog):
    with caplog.at_level(logging.WARNING, logger="dreamdance.animate.pipeline"):
        video = run(pipe, frames=5, height=30, width=52)
    assert video.shape == (1, 5, 3, 32, 48)
    assert "multiple of 16" in caplog.text


def test_pil_output_and_callback(pipe):
    steps = []

    def callback(p, i, t, tensors):
        steps.append(i)
        return {"latents": tensors["latents"]}

    frames = run(pipe, frames=5, output_type="pil", num_inference_steps=3,
                 callback_on_step_end=callback)
    assert len(frames) == 1 and len(frames[0]) == 5 and frames[0][0].size == (W, H)
    assert steps == [0, 1, 2]


def _nan(x):
    x = np.array(x, dtype=np.float32)
    x.flat[0] = np.nan
    return x


BAD = [
    (lambda a: a | dict(mask_video=a["mask_video"][:9]), "mask_video"),
    (lambda a: a | dict(pose_videos=a["pose_videos"] | dict(hand=a["pose_videos"]["hand"][:8])),
     "hand"),
    (lambda a: a | dict(pose_videos={"face": a["pose_videos"]["face"]}), "pose_videos"),
    (lambda a: a | dict(character=a["character"][..., :3]), "alpha"),
    (lambda a: a | dict(mask_video=_nan(a["mask_video"])), "mask_video"),
    (lambda a: a | dict(background_video=_nan(a["background_video"])), "background_video"),
    (lambda a: a | dict(character=_nan(a["character"])), "character"),
    (lambda a: a | dict(num_inference_steps=0), "num_inference_steps"),
    (lambda a: a | dict(pose_videos=a["pose_videos"] | dict(body=a["pose_videos"]["body"] * 2)),
     "body"),
    (lambda a: a | dict(guidance_scale=0.5), "guidance_scale"),
    (lambda a: a | dict(num_frames=11), "num_frames"),
    (lambda a: a | dict(window=3, overlap=3), "overlap"),
    (lambda a: a | dict(output_type="gif"), "output_type"),
    (lambda a: a | dict(latents=torch.zeros(1, 2, 16, 4, 6)), "latents"),
]


@pytest.mark.parametrize("change, name", BAD)
def test_bad_inputs_raise_naming_the_input(pipe, change, name):
    with pytest.raises(ValueError, match=name):
        pipe(**change(make_inputs(10) | dict(num_inference_steps=1)))


LAYOUTS = ["1.0", "1.5"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runs_with_a_tiny_dreamdance_transformer(layout):
    transformer = tiny_components(layout)["transformer"].eval()
    pipe = make_pipeline(transformer=transformer)
    whole = run(pipe, frames=21, output_type="latent")
    windowed = run(pipe, frames=21, window=4, overlap=2, output_type="latent")
    assert whole.shape == windowed.shape == (1, 6, 16, H // 8, W // 8)
    assert torch.isfinite(windowed).all() and (whole - windowed).abs().max() > 0
    assert run(pipe, frames=7, guidance_scale=1.0).shape == (1, 7, 3, H, W)


def tiny_transformer(layout: str) -> DreamDanceTransformer3DModel:
    transformer = tiny_components(layout)["transformer"].eval()
    with torch.no_grad():  # open the gates so that guidance has something to push towards
        for gate in (transformer.pose_gate, transformer.character_gate):
            gate.bias.fill_(0.7)
            gate.weight.normal_(std=0.1)
    return transformer


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batched_guidance_equals_two_calls(layout):
    """One call on [conditional, unconditional] gives the two-call guidance formula."""
    transformer = tiny_transformer(layout)
    pipe = make_pipeline(transformer=transformer)
    pipe._guidance_scale = 4.5
    g = torch.Generator().manual_seed(5)
    frames, h, w = 4, H // 8, W // 8
    latents = torch.randn(1, frames, 16, h, w, generator=g)
    background = torch.randn(1, frames, 32, h, w, generator=g)
    pose = torch.randn(1, frames, 48, h, w, generator=g)
    character = torch.randn(1, 1, 16, h, w, generator=g).expand(1, frames, 16, h, w)
    image_embeds = torch.randn(1, 7, 32, generator=g)
    ofs = torch.full((1,), 2.0) if transformer.config.ofs_embed_dim else None
    rotary = transformer.rotary_embedding(frames, h, w)
    pipe.scheduler.set_timesteps(10)
    t = pipe.scheduler.timesteps[3]
    with torch.no_grad():
        tokens = transformer.condition_tokens(pose, character)
        batched = pipe.predict(latents, background, *tokens, image_embeds, t, ofs, rotary, None)
        common = dict(hidden_states=pipe.scheduler.scale_model_input(latents, t),
                      background=background, timestep=t.reshape(1), image_embeds=image_embeds,
                      ofs=ofs, image_rotary_emb=rotary)
        conditional = transformer(**common, pose=pose, character=character).sample
        unconditional = transformer(**common).sample
    expected = unconditional + 4.5 * (conditional - unconditional)
    assert (conditional - unconditional).abs().max() > 1e-2  # the conditions matter
    torch.testing.assert_close(batched, expected)


def test_condition_videos_are_encoded_as_one_batch(pipe, monkeypatch):
    """One VAE pass for the five videos, and the same latents as one video at a time."""
    batches = []
    encode = pipe.encode_video

    def spy(video):
        batches.append(video.shape[0])
        return encode(video)

    monkeypatch.setattr(pipe, "encode_video", spy)
    batched = run(pipe, frames=5, output_type="latent")
    assert batches == [5, 1]  # background, mask and three pose videos; then the character
    pipe.enable_vae_slicing()  # the VAE encodes the batch one video at a time
    try:
        sliced = run(pipe, frames=5, output_type="latent")
    finally:
        pipe.disable_vae_slicing()
    torch.testing.assert_close(sliced, batched)
