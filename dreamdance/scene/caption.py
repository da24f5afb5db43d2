"""Captions: a one-sentence description of the background, the prompt for the scene inpainter.

Every captioner is a small class built by Hydra (``conf/captioner/``) and called as

    prompt = captioner(rgb)   # rgb [H, W, 3] float32 in [0, 1] -> str

Backends:

- :class:`FixedCaptioner` — the same prompt for every image (config ``captioner=none``);
- :class:`LlavaCaptioner` — LLaVA (``llava-hf/llava-1.5-7b-hf`` and other
  ``LlavaForConditionalGeneration`` checkpoints), asked to describe the background.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.media import to_uint8
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

LLAVA = ModelSpec(
    key="weights.llava",
    name="LLaVA (llava-hf/llava-1.5-7b-hf)",
    repo="llava-hf/llava-1.5-7b-hf",
    marker="config.json",
    accept=("LlavaForConditionalGeneration",),
)


class FixedCaptioner:
    """The same prompt for every image.

    Args:
        prompt: the text returned.
    """

    def __init__(self, prompt: str):
        if not isinstance(prompt, str):
            raise InputError(f"captioner.prompt={prompt}", "must be text")
        self.prompt = prompt

    def __call__(self, rgb: np.ndarray) -> str:
        """Args: rgb ``[H, W, 3]`` (unused). Returns the prompt."""
        _check_rgb(rgb)
        return self.prompt


class LlavaCaptioner:
    """Ask LLaVA to describe the image's background; its answer is the inpainting prompt.

    The processor and model are loaded from the folder on the first call (the folder is
    checked at construction). The question is wrapped in the processor's chat template when
    the folder ships one, else in LLaVA-1.5's ``USER: <image>\\n... ASSISTANT:`` format.
    Decoding is greedy; the answer is the generated text only, whitespace collapsed. An empty
    answer is logged and replaced by ``fallback``.

    Args:
        path: the weights folder (``weights.llava``).
        device: ``auto``, ``cpu`` or ``cuda``.
        max_new_tokens: the longest answer, in tokens.
        question: what LLaVA is asked.
        fallback: the prompt used for an empty answer.
        dtype: ``auto`` (float16 on CUDA, float32 on CPU), ``float32``, ``float16`` or
            ``bfloat16``.
    """

    def __init__(self, path: str | Path | None, question: str, fallback: str, device: str = "auto",
                 max_new_tokens: int = 60, dtype: str = "auto"):
        self.path = require_dir(path, LLAVA)
        if (isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral)
                or max_new_tokens < 1):
            raise InputError(f"captioner.max_new_tokens={max_new_tokens}",
                             "must be an integer >= 1")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"captioner.question={question}", "must be non-empty text")
        if not isinstance(fallback, str) or not fallback.strip():
            raise InputError(f"captioner.fallback={fallback}", "must be non-empty text")
        self.fallback = fallback
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device, "captioner.dtype")
        self.max_new_tokens, self.question = int(max_new_tokens), question.strip()
        self.processor: Any = None
        self.model: Any = None

    def load(self) -> tuple[Any, Any]:
        """Load the processor and the model (once); return ``(processor, model)``.

        Only the folder's files are read (``local_files_only=True``) and Python code shipped
        in the folder (an ``auto_map`` entry) is never run (``trust_remote_code=False``).

        Raises:
            InputError: the folder cannot be loaded (e.g. it needs its own code).
        """
        if self.model is None:
            from transformers import AutoProcessor, LlavaForConditionalGeneration

            self.processor = self._from_folder(AutoProcessor)
            model = self._from_folder(LlavaForConditionalGeneration, dtype=self.dtype)
            self.model = model.to(self.device).eval()
            log.info("LLaVA loaded from %s (%s, %s)", self.path, self.device, self.dtype)
        return self.processor, self.model

    def _from_folder(self, cls: Any, **kwargs: Any) -> Any:
        try:
            return cls.from_pretrained(self.path, local_files_only=True, trust_remote_code=False,
                                       **kwargs)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{LLAVA.key}={self.path}",
                             f"cannot be loaded as {LLAVA.name} ({first})") from None

    def prompt(self) -> str:
        """The text given to the processor: the question with an image slot, in chat form."""
        processor, _ = self.load()
        if getattr(processor, "chat_template", None):
            conversation = [{"role": "user", "content": [
                {"type": "image"}, {"type": "text", "text": self.question}]}]
            return processor.apply_chat_template(conversation, add_generation_prompt=True)
        image_token = getattr(processor, "image_token", "<image>")
        return f"USER: {image_token}\n{self.question} ASSISTANT:"

    def __call__(self, rgb: np.ndarray) -> str:
        """Args: rgb ``[H, W, 3]``. Returns the answer, one line of text."""
        import torch
        from PIL import Image

        _check_rgb(rgb)
        processor, model = self.load()
        image = Image.fromarray(to_uint8(np.asarray(rgb)))
        inputs = processor(images=image, text=self.prompt(), return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.dtype)  # floats only are cast
        n_prompt = inputs["input_ids"].shape[1]
        tokenizer = processor.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
            tokenizer.eos_token_id
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=False, num_beams=1,
                                 max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        answer = " ".join(processor.decode(out[0, n_prompt:], skip_special_tokens=True).split())
        if not answer:
            log.warning("LLaVA gave an empty caption; using %r", self.fallback)
            return self.fallback
        log.info("caption: %r", answer)
        return answer


def _check_rgb(rgb: np.ndarray) -> None:
    shape = np.shape(rgb)
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 1:
        raise ValueError(f"rgb must be [H, W, 3], got shape {shape}")
