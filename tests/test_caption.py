"""Tests for dreamdance.scene.caption: the fixed prompt and LLaVA captions from a tiny LLaVA
(CLIP vision tower, Llama text model, word-level tokenizer) saved to disk and loaded back."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from runner import config

from dreamdance.errors import InputError
from dreamdance.scene.caption import (
    FixedCaptioner,
    LlavaCaptioner,
)
from dreamdance.settings import conf_values

CONF = Path(__file__).resolve().parents[1] / "conf" / "captioner"
PROMPT = conf_values("stage/scene", "stage")["prompt"]
QUESTION = conf_values("captioner/llava")["question"]
WORDS = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "USER:", "ASSISTANT:", "describe", "the",
         "background", "a", "green", "field", "under", "blue", "sky"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def write_llava(folder: Path, first: str, chat_template: bool = True) -> Path:
    """A tiny LLaVA whose language head is zero, so greedy decoding always picks token id 0
    (``first``): a fixed, known answer that only the saved weights produce."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    words = [first] + [w for w in WORDS if w != first]
    ids = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=ids, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"}, model_max_length=256)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32},
                                         crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE if chat_template else None)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                              num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=37,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=256, bos_token_id=ids["<s>"],
                       eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids["<image>"],
                         vision_feature_layer=-2, vision_feature_select_strategy="default")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: argmax is token 0
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llava_sky(tmp_path_factory) -> Path:
    return write_llava(tmp_path_factory.mktemp("weights") / "llava", first="sky")


def llava(path, **settings) -> LlavaCaptioner:
    """A LLaVA captioner with the question and fallback of the config files."""
    return LlavaCaptioner(path, **{"question": QUESTION, "fallback": PROMPT, **settings})


def image(h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (h, w, 3)).astype(np.float32)


def test_fixed_captioner():
    assert FixedCaptioner("a beach at dusk")(image()) == "a beach at dusk"
    with pytest.raises(InputError, match="captioner.prompt=3: must be text"):
        FixedCaptioner(3)
    with pytest.raises(ValueError, match="rgb must be"):
        FixedCaptioner(PROMPT)(np.zeros((4, 4)))


def test_llava_caption_from_saved_tiny_model(llava_sky):
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    captioner = llava(str(llava_sky), device="cpu", max_new_tokens=3)
    assert captioner.model is None  # loaded on the first call
    caption = captioner(image())
    assert caption == "sky sky sky"  # greedy, the prompt stripped, max_new_tokens honoured
    assert isinstance(captioner.model, LlavaForConditionalGeneration)
    assert isinstance(captioner.processor, LlavaProcessor)
    assert not captioner.model.training and captioner.model.dtype == torch.float32
    assert captioner.model.config.vision_config.hidden_size == 32  # the saved tiny model
    assert captioner.prompt() == f"USER: <image>\n{QUESTION} ASSISTANT:"
    assert captioner(image(64, 20)) == "sky sky sky"  # any image size


def test_llava_without_chat_template_and_custom_question(tmp_path):
    folder = write_llava(tmp_path / "llava", first="blue", chat_template=False)
    captioner = llava(folder, device="cpu", max_new_tokens=2, question="  describe the background  ")
    assert captioner.prompt() == "USER: <image>\ndescribe the background ASSISTANT:"
    assert captioner(image()) == "blue blue"


def test_llava_empty_answer_falls_back_to_default(tmp_path, caplog):
    folder = write_llava(tmp_path / "llava", first="</s>")  # greedy picks end-of-text at once
    captioner = llava(folder, device="cpu")
    with caplog.at_level(logging.WARNING, logger="dreamdance.scene.caption"):
        assert captioner(image()) == PROMPT
    assert "empty caption" in caplog.text


def test_llava_refusals(tmp_path, llava_sky):
    with pytest.raises(InputError, match="no such folder") as e:
        llava(str(tmp_path / "missing"))
    assert e.value.name == f"weights.llava={tmp_path / 'missing'}"
    assert "llava-hf/llava-1.5-7b-hf" in e.value.problem
    with pytest.raises(InputError, match="weights.llava: not set"):
        llava(None)
    other = tmp_path / "next"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({
        "model_type": "llava_next", "architectures": ["LlavaNextForConditionalGeneration"]}))
    with pytest.raises(InputError, match="not LLaVA"):
        llava(str(other))
    with pytest.raises(InputError, match="captioner.max_new_tokens=0"):
        llava(llava_sky, max_new_tokens=0)
    with pytest.raises(InputError, match="captioner.question= : must be non-empty"):
        llava(llava_sky, question=" ")
    with pytest.raises(InputError, match="captioner.fallback= : must be non-empty"):
        llava(llava_sky, fallback=" ")
    with pytest.raises(InputError, match="captioner.dtype=int8"):
        llava(llava_sky, device="cpu", dtype="int8")


def compose(name: str, *overrides: str):
    """The ``captioner`` node of the scene stage's run config with ``captioner=name``."""
    return config("stage=scene", f"captioner={name}", "device=cpu", *overrides).captioner


def test_configs_build_the_captioners(llava_sky):
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == ["llava", "none"]
    none = instantiate(compose("none"))
    assert isinstance(none, FixedCaptioner) and none.prompt == PROMPT
    built = instantiate(compose("llava", f"weights.llava={llava_sky}"))
    assert isinstance(built, LlavaCaptioner) and built.path == llava_sky
    assert (built.device, built.max_new_tokens, built.question, built.fallback) == ("cpu", 60, QUESTION, PROMPT)
    with pytest.raises(InstantiationException) as e:  # Hydra wraps the InputError
        instantiate(compose("llava"))
    assert isinstance(e.value.__cause__, InputError)
    assert e.value.__cause__.name == "weights.llava"
