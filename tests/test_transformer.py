"""The DreamDance transformer on tiny CogVideoX image-to-video bases of both layouts.

1.0: Conv2d patches, learned positional embeddings and rotary embeddings (CogVideoX-5b-I2V);
1.5: Linear patches over two frames, rotary embeddings and the ofs condition
(CogVideoX1.5-5B-I2V).
"""

import json

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from safetensors import safe_open

from dreamdance.animate.convert import from_cogvideox
from dreamdance.animate.transformer import (
    NEW_LAYERS,
    DreamDanceTransformer3DModel,
    repeat_character,
    resize_positional_embedding,
)
from dreamdance.errors import InputError
from tools import convert_cogvideox

CLIP = 20  # tiny CLIP hidden size
TEXT = 24  # tiny text width
SIZE = 8  # latent height and width of the base's sample grid
COMMON = dict(num_attention_heads=2, attention_head_dim=16, in_channels=32, out_channels=16,
              time_embed_dim=32, text_embed_dim=TEXT, num_layers=1, sample_width=SIZE,
              sample_height=SIZE, sample_frames=9, max_text_seq_length=6,
              use_rotary_positional_embeddings=True)
LAYOUTS = {
    "1.0": dict(COMMON, patch_size=2, use_learned_positional_embeddings=True),
    "1.5": dict(COMMON, patch_size=2, patch_size_t=2, ofs_embed_dim=32, patch_bias=False),
    # no rotary embedding: a fixed sin-cos embedding (CogVideoX-2b style), not saved
    "sincos": dict(COMMON, patch_size=2, use_rotary_positional_embeddings=False),
}
FRAMES = {"1.0": 3, "1.5": 4, "sincos": 3}  # latent frames (1.0: the base's 9 video frames)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_base(layout: str, **overrides) -> CogVideoXTransformer3DModel:
    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(**{**LAYOUTS[layout], **overrides}).eval()
    if base.config.use_learned_positional_embeddings:  # make the "learned" embedding non-trivial
        base.patch_embed.pos_embedding.normal_()
    return base


def tiny_model(layout: str, **extra) -> DreamDanceTransformer3DModel:
    return from_cogvideox(tiny_base(layout), clip_embed_dim=CLIP, **extra).eval()


def inputs(layout: str, batch: int = 2, frames: int | None = None, size: int = SIZE) -> dict:
    """Seeded inputs for DreamDance's forward (the 1.5 layout gets ofs and rotary embeddings)."""
    frames = frames or FRAMES[layout]
    g = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    return dict(
        hidden_states=rand(batch, frames, 16, size, size),
        background=rand(batch, frames, 32, size, size),
        timestep=torch.tensor([10, 700])[:batch],
        image_embeds=rand(batch, 5, CLIP),
        pose=rand(batch, frames, 48, size, size),
        character=repeat_character(rand(batch, 1, 16, size, size), frames),
        ofs=2.0 if layout == "1.5" else None,
    )


def with_rotary(model, kw: dict) -> dict:
    _, frames, _, height, width = kw["hidden_states"].shape
    return dict(kw, image_rotary_emb=model.rotary_embedding(frames, height, width))


def set_gates(model, value: float) -> None:
    with torch.no_grad():
        for gate in (model.pose_gate, model.character_gate):
            gate.bias.fill_(value)


@pytest.mark.parametrize("layout", ["1.0", "1.5", "sincos"])
def test_zero_gates_equal_base(layout):
    """At initialisation the model is the base I2V model on [x_t, background latent]."""
    base = tiny_base(layout)
    model = from_cogvideox(base, clip_embed_dim=CLIP).eval()
    kw = with_rotary(model, inputs(layout))
    with torch.no_grad():
        ours = model(**kw).sample
        states = model.encode_image(kw["image_embeds"])
        ofs = None if kw["ofs"] is None else torch.tensor([kw["ofs"]])
        expected = base(torch.cat([kw["hidden_states"], kw["background"][:, :, :16]], dim=2),
                        states, kw["timestep"], ofs=ofs,
                        image_rotary_emb=kw["image_rotary_emb"]).sample
        # the mask channels carry zero weights: any mask gives the same output
        other_mask = dict(kw, background=torch.cat(
            [kw["background"][:, :, :16], torch.randn(kw["background"][:, :, 16:].shape,
                                                      generator=torch.Generator().manual_seed(3))],
            dim=2))
        with_other_mask = model(**other_mask).sample
    assert ours.shape == kw["hidden_states"].shape
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(with_other_mask, expected)
    assert not torch.allclose(ours, torch.zeros_like(ours))


def test_encode_image_pads_and_truncates_for_learned_embeddings():
    model = tiny_model("1.0")  # max_text_seq_length 6
    short, long = torch.randn(2, 4, CLIP), torch.randn(2, 9, CLIP)
    padded, cut = model.encode_image(short), model.encode_image(long)
    assert padded.shape == cut.shape == (2, 6, TEXT)
    assert torch.equal(padded[:, 4:], torch.zeros(2, 2, TEXT))
    torch.testing.assert_close(cut, model.image_proj(long[:, :6]))
    assert model.encode_image(None, batch_size=3).shape == (3, 6, TEXT)
    # rotary-only layouts keep the image tokens' own length
    assert tiny_model("1.5").encode_image(long).shape == (2, 9, TEXT)


@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_first_step_gradients(layout):
    """Gradients of the new layers on the first steps.

    Step one (gates exactly zero): the gates, ``image_proj`` and ``f_b``'s mask channels get
    non-zero gradients; ``f_p`` and ``f_c`` get exactly zero, since d(tanh(g)·f)/dθ_f =
    tanh(g)·df/dθ_f = 0. After one optimiser step (the gates have moved) ``f_p`` and ``f_c``
    get non-zero gradients too.
    """
    model = tiny_model(layout).train()
    kw = with_rotary(model, inputs(layout))
    target = torch.randn(kw["hidden_states"].shape, generator=torch.Generator().manual_seed(2))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)

    loss = (model(**kw).sample - target).pow(2).mean()
    loss.backward()
    for gate in (model.pose_gate, model.character_gate):
        assert gate.weight.grad.abs().sum() > 0 and gate.bias.grad.abs().sum() > 0
    assert model.image_proj.weight.grad.abs().sum() > 0
    proj = model.patch_embed.proj
    mask_grad = proj.weight.grad[:, 32:] if proj.weight.ndim == 4 else \
        proj.weight.grad.reshape(proj.weight.shape[0], 48, -1)[:, 32:]
    assert mask_grad.abs().sum() > 0
    for embed in (model.pose_embed, model.character_embed):
        assert embed.weight.grad is not None and torch.count_nonzero(embed.weight.grad) == 0

    optimiser.step()
    optimiser.zero_grad()
    assert model.pose_gate.bias.abs().sum() > 0
    (model(**kw).sample - target).pow(2).mean().backward()
    for embed in (model.pose_embed, model.character_embed):
        assert embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_conversion_copies_every_base_weight(layout):
    base = tiny_base(layout)
    model = from_cogvideox(base, clip_embed_dim=CLIP)
    ours, theirs = model.state_dict(), base.state_dict()
    key = "patch_embed.proj.weight"
    for name, value in theirs.items():
        if name != key:
            assert torch.equal(ours[name], value), name
    widened, original = ours[key], theirs[key]
    if widened.ndim == 4:  # Conv2d [D, C, p, p]
        assert widened.shape[1] == 48
        assert torch.equal(widened[:, :32], original)
        assert torch.count_nonzero(widened[:, 32:]) == 0
    else:  # Linear [D, C·p_t·p·p], channel-major
        assert widened.shape[1] == 48 * original.shape[1] // 32
        assert torch.equal(widened[:, :original.shape[1]], original)
        assert torch.count_nonzero(widened[:, original.shape[1]:]) == 0
    new = set(ours) - set(theirs)
    assert new and all(name.startswith(NEW_LAYERS) for name in new)
    for gate in ("pose_gate", "character_gate"):
        assert torch.count_nonzero(ours[f"{gate}.weight"]) == 0
        assert torch.count_nonzero(ours[f"{gate}.bias"]) == 0
    for embed in ("pose_embed", "character_embed", "image_proj"):
        assert torch.count_nonzero(ours[f"{embed}.weight"]) > 0
    assert model.config.in_channels == 48 and model.config.clip_embed_dim == CLIP


@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_save_and_load_round_trip(layout, tmp_path):
    model = tiny_model(layout, per_channel_gates=True, positional_embedding="drop")
    set_gates(model, 0.3)
    model.save_pretrained(tmp_path / "dd")
    assert (tmp_path / "dd" / "diffusion_pytorch_model.safetensors").is_file()
    config = json.loads((tmp_path / "dd" / "config.json").read_text())
    assert config["_class_name"] == "DreamDanceTransformer3DModel"
    assert config["per_channel_gates"] is True and config["positional_embedding"] == "drop"
    loaded = DreamDanceTransformer3DModel.from_pretrained(tmp_path / "dd", local_files_only=True)
    public = {k: v for k, v in model.config.items() if not k.startswith("_")}
    assert {k: v for k, v in loaded.config.items() if not k.startswith("_")} == public
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_convert_from_pipeline_folder_and_tool(tmp_path):
    base = tiny_base("1.5")
    base.save_pretrained(tmp_path / "CogVideoX-I2V" / "transformer")
    (tmp_path / "CogVideoX-I2V" / "model_index.json").write_text("{}")
    model = from_cogvideox(tmp_path / "CogVideoX-I2V", clip_embed_dim=CLIP)
    assert torch.equal(model.state_dict()["proj_out.weight"], base.state_dict()["proj_out.weight"])

    convert_cogvideox.main([f"base={tmp_path / 'CogVideoX-I2V' / 'transformer'}",
                            f"out={tmp_path / 'out'}", "dtype=bf16"])
    with safe_open(tmp_path / "out" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    converted = DreamDanceTransformer3DModel.from_pretrained(
        tmp_path / "out", local_files_only=True, torch_dtype=torch.bfloat16)
    for name, value in base.state_dict().items():
        if name != "patch_embed.proj.weight":
            assert torch.equal(converted.state_dict()[name], value.to(torch.bfloat16)), name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    with pytest.raises(SystemExit) as e:  # the output folder is not empty
        convert_cogvideox.main([f"base={tmp_path / 'CogVideoX-I2V'}", f"out={tmp_path / 'out'}"])
    assert e.value.code == 2


def test_text_to_video_base_is_refused(tmp_path, capsys):
    t2v = tiny_base("1.0", in_channels=16)
    with pytest.raises(InputError, match="is a text-to-video model.*CogVideoX-5b-I2V"):
        from_cogvideox(t2v)
    t2v.save_pretrained(tmp_path / "t2v")
    with pytest.raises(InputError, match=r"weights.cogvideox=.*t2v: is a text-to-video model"):
        from_cogvideox(tmp_path / "t2v")
    with pytest.raises(InputError, match="no such folder"):
        from_cogvideox(tmp_path / "missing")
    with pytest.raises(SystemExit) as e:
        convert_cogvideox.main([f"base={tmp_path / 't2v'}", f"out={tmp_path / 'o'}"])
    assert e.value.code == 2 and not (tmp_path / "o").exists()
    assert "error: base=" in capsys.readouterr().err


def test_unknown_conversion_argument_is_refused():
    with pytest.raises(ValueError, match="extra: unknown DreamDance arguments \\['num_layers'\\]"):
        from_cogvideox(tiny_base("1.0"), num_layers=3)


@pytest.mark.parametrize("per_channel_gates", [False, True])
def test_condition_dropout(per_channel_gates):
    model = tiny_model("1.0", per_channel_gates=per_channel_gates)
    kw = with_rotary(model, inputs("1.0"))
    with torch.no_grad():
        # zero gates: leaving a condition out changes nothing
        reference = model(**kw).sample
        torch.testing.assert_close(model(**dict(kw, pose=None)).sample, reference)
        torch.testing.assert_close(model(**dict(kw, character=None)).sample, reference)
        set_gates(model, 0.5)
        full = model(**kw).sample
        no_pose = model(**dict(kw, pose=None)).sample
        no_character = model(**dict(kw, character=None)).sample
        neither = model(**dict(kw, pose=None, character=None)).sample
        model.pose_gate.bias.zero_()
        pose_gate_zero = model(**kw).sample
    assert not torch.allclose(full, no_pose)
    assert not torch.allclose(full, no_character)
    assert not torch.allclose(no_pose, neither)
    torch.testing.assert_close(no_pose, pose_gate_zero)


def test_gates_are_per_sample():
    model = tiny_model("1.0")
    kw = with_rotary(model, inputs("1.0"))
    with torch.no_grad():
        model.pose_gate.weight.normal_()  # the gate now depends on the timestep
        both = model(**kw).sample
        first = model(**{k: v[:1] if torch.is_tensor(v) else v for k, v in kw.items()}).sample
    torch.testing.assert_close(both[:1], first)


def test_positional_embedding_interpolation():
    base_grid = (3, SIZE // 2, SIZE // 2)  # latent frames, token rows, token columns
    embedding = torch.randn(1, 3 * 4 * 4, 16)
    torch.testing.assert_close(resize_positional_embedding(embedding, base_grid, base_grid),
                               embedding)
    resized = resize_positional_embedding(embedding, base_grid, (5, 6, 3))
    assert resized.shape == (1, 5 * 6 * 3, 16)

    model = tiny_model("1.0")
    learned = model.patch_embed.pos_embedding
    same = model.positional_embedding_for(3, SIZE, SIZE, text_length=6)
    assert torch.equal(same, learned)
    other = model.positional_embedding_for(5, 12, 6, text_length=6)
    assert other.shape == (1, 6 + 5 * 6 * 3, 32)
    assert torch.equal(other[:, :6], learned[:, :6])

    # a working grid other than the base's sample grid: runs (the base refuses it)
    kw = with_rotary(model, inputs("1.0", frames=5, size=12))
    with torch.no_grad():
        assert model(**kw).sample.shape == (2, 5, 16, 12, 12)
        dropped = tiny_model("1.0", positional_embedding="drop")
        assert dropped.positional_embedding_for(5, 12, 12, 6) is None
        assert dropped(**kw).sample.shape == (2, 5, 16, 12, 12)


def test_repeat_character():
    latent = torch.randn(2, 1, 16, 4, 6)
    repeated = repeat_character(latent, 5)
    assert repeated.shape == (2, 5, 16, 4, 6)
    assert all(torch.equal(repeated[:, i], latent[:, 0]) for i in range(5))
    with pytest.raises(ValueError, match="latent: expected shape"):
        repeat_character(torch.randn(2, 3, 16, 4, 6), 5)


@pytest.mark.parametrize(("change", "message"), [
    (dict(background=torch.zeros(2, 4, 16, 8, 8)), r"background: expected shape \[2, 4, 32"),
    (dict(pose=torch.zeros(2, 4, 16, 8, 8)), r"pose: expected shape \[2, 4, 48"),
    (dict(character=torch.zeros(2, 4, 16, 4, 4)), "character: expected shape"),
    (dict(image_embeds=torch.zeros(2, 5, 7)), r"image_embeds: expected shape \[B, L, 20\]"),
    (dict(image_embeds=torch.zeros(3, 5, CLIP)), "image_embeds: batch of 3"),
    (dict(ofs=None), "ofs: required"),
    (dict(hidden_states=torch.zeros(2, 4, 16, 8, 8), timestep=torch.zeros(3)), "timestep:"),
])
def test_bad_input(change, message):
    model = tiny_model("1.5")
    with pytest.raises(ValueError, match=message):
        model(**dict(inputs("1.5"), **change))


def test_odd_frames_and_bad_config():
    model = tiny_model("1.5")
    kw = inputs("1.5", frames=3)
    with pytest.raises(ValueError, match="hidden_states: 3 latent frames"):
        model(**kw)
    with pytest.raises(ValueError, match="positional_embedding: expected one of"):
        DreamDanceTransformer3DModel(**LAYOUTS["1.0"], positional_embedding="learned")


def test_lora_adapter():
    from peft import LoraConfig

    model = tiny_model("1.5")
    kw = with_rotary(model, inputs("1.5"))
    with torch.no_grad():
        before = model(**kw).sample
    model.add_adapter(LoraConfig(r=2, target_modules=["to_q", "to_v"], init_lora_weights=False))
    with torch.no_grad():
        after = model(**kw).sample
        unscaled = model(**kw, attention_kwargs={"scale": 0.0}).sample
    assert not torch.allclose(before, after)
    torch.testing.assert_close(unscaled, before)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny_model("1.0").train()
    set_gates(model, 0.2)
    kw = with_rotary(model, inputs("1.0"))
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            model.enable_gradient_checkpointing()
        model.zero_grad()
        model(**kw).sample.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


def batch_of_four(model, layout: str) -> dict:
    """Four distinct samples (two seeded batches of two) with rotary embeddings."""
    first, second = inputs(layout), inputs(layout)
    g = torch.Generator().manual_seed(4)
    kw = {}
    for key, value in first.items():
        if torch.is_tensor(value) and key != "timestep":
            other = torch.randn(second[key].shape, generator=g)
            kw[key] = torch.cat([value, other])
        else:
            kw[key] = value
    kw["character"] = repeat_character(kw["character"][:, :1], kw["character"].shape[1])
    kw["timestep"] = torch.tensor([10, 700, 300, 999])
    return with_rotary(model, kw)


def open_gates(model) -> None:
    with torch.no_grad():
        for gate in (model.pose_gate, model.character_gate):
            gate.weight.normal_(generator=torch.Generator().manual_seed(6))
            gate.bias.fill_(0.5)


def sample(kw: dict, i: int) -> dict:
    return {k: v[i:i + 1] if torch.is_tensor(v) and k != "image_rotary_emb" else v
            for k, v in kw.items()}


@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_condition_tokens_equal_the_raw_path(layout):
    model = tiny_model(layout)
    open_gates(model)
    kw = with_rotary(model, inputs(layout))
    with torch.no_grad():
        pose_tokens, character_tokens = model.condition_tokens(kw["pose"], kw["character"])
        raw = model(**kw).sample
        tokens = model(**dict(kw, pose=None, character=None, pose_tokens=pose_tokens,
                              character_tokens=character_tokens)).sample
        mixed = model(**dict(kw, pose=None, pose_tokens=pose_tokens)).sample
    n = FRAMES[layout] * (SIZE // 2) ** 2 // (2 if layout == "1.5" else 1)
    assert pose_tokens.shape == character_tokens.shape == (2, n, 32)
    assert model.condition_tokens(None, kw["character"])[0] is None
    torch.testing.assert_close(tokens, raw, rtol=0, atol=0)
    torch.testing.assert_close(mixed, raw, rtol=0, atol=0)
    with pytest.raises(ValueError, match="pose: give either pose or pose_tokens"):
        model(**dict(kw, pose_tokens=pose_tokens))
    with pytest.raises(ValueError, match=r"character_tokens: expected shape \[2, "):
        model(**dict(kw, character=None, character_tokens=character_tokens[:, 1:]))
    with pytest.raises(ValueError, match="pose: expected shape"):
        model.condition_tokens(kw["character"], None)


@pytest.mark.parametrize("per_channel_gates", [False, True])
@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_keep_masks_equal_the_none_path_per_sample(layout, per_channel_gates):
    """In a mixed batch every sample is what it is alone with its conditions left out, even
    when a dropped condition is not finite."""
    model = tiny_model(layout, per_channel_gates=per_channel_gates)
    open_gates(model)
    kw = batch_of_four(model, layout)
    keep_pose = torch.tensor([1.0, 0.0, 1.0, 0.0])  # float 0/1
    keep_character = torch.tensor([True, True, False, False])
    pose = kw["pose"].clone()
    pose[1, 0, 0, 0, 0] = float("nan")  # dropped: must not reach the output
    pose[3] = float("inf")
    with torch.no_grad():
        mixed = model(**dict(kw, pose=pose), keep_pose=keep_pose,
                      keep_character=keep_character).sample
        alone = []
        for i in range(4):
            one = sample(kw, i)
            alone.append(model(**dict(one, pose=one["pose"] if keep_pose[i] else None,
                                      character=one["character"] if keep_character[i] else None)
                               ).sample)
        everything = model(**kw).sample
    assert torch.isfinite(mixed).all()
    for i in range(4):
        torch.testing.assert_close(mixed[i:i + 1], alone[i], msg=f"sample {i}")
    # the terms matter: a kept condition changes the output
    assert not torch.allclose(mixed[1], everything[1])
    assert not torch.allclose(mixed[2], everything[2])
    torch.testing.assert_close(mixed[0], everything[0])


def test_keep_masks_are_exact_on_a_batch():
    """All-kept and all-dropped masks give the raw and the None paths bitwise (CPU, fp32)."""
    model = tiny_model("1.0")
    open_gates(model)
    kw = batch_of_four(model, "1.0")
    ones, zeros = torch.ones(4, dtype=torch.bool), torch.zeros(4)
    with torch.no_grad():
        kept = model(**kw, keep_pose=ones, keep_character=ones).sample
        dropped = model(**kw, keep_pose=zeros, keep_character=zeros).sample
        torch.testing.assert_close(kept, model(**kw).sample, rtol=0, atol=0)
        torch.testing.assert_close(dropped, model(**dict(kw, pose=None, character=None)).sample,
                                   rtol=0, atol=0)


@pytest.mark.parametrize(("change", "message"), [
    (dict(keep_pose=torch.ones(3)), r"keep_pose: expected a tensor of shape \[4\], got \[3\]"),
    (dict(keep_pose=[1, 0, 1, 0]), r"keep_pose: expected a tensor of shape \[4\], got list"),
    (dict(keep_character=torch.tensor([1.0, 0.5, 0.0, 1.0])), "keep_character: expected bool "
                                                               "or 0/1 values"),
    (dict(pose=None, keep_pose=torch.ones(4)), "keep_pose: given without pose or pose_tokens"),
])
def test_bad_keep_masks(change, message):
    model = tiny_model("1.0")
    kw = batch_of_four(model, "1.0")
    with pytest.raises(ValueError, match=message):
        model(**dict(kw, **change))


@pytest.mark.parametrize("layout", ["1.0", "1.5"])
def test_dropped_samples_give_no_gradient_to_their_condition(layout):
    model = tiny_model(layout).train()
    open_gates(model)
    kw = batch_of_four(model, layout)
    keep = torch.tensor([True, False, True, False])

    def gradients(weights):
        model.zero_grad()
        out = model(**kw, keep_pose=keep, keep_character=keep).sample
        (out.square().mean(dim=(1, 2, 3, 4)) * weights).sum().backward()
        return {name: getattr(model, name).weight.grad.clone()
                for name in ("pose_embed", "character_embed", "pose_gate", "character_gate",
                             "image_proj")}

    dropped = gradients(torch.tensor([0.0, 1.0, 0.0, 1.0]))  # loss on the dropped samples only
    kept = gradients(torch.tensor([1.0, 0.0, 1.0, 0.0]))
    for name in ("pose_embed", "character_embed", "pose_gate", "character_gate"):
        assert torch.count_nonzero(dropped[name]) == 0, name
        assert kept[name].abs().sum() > 0, name
    assert dropped["image_proj"].abs().sum() > 0  # the rest of the model still learns
