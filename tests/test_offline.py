"""No code path reaches a hub or runs a weights folder's own code by surprise."""

import ast
import builtins
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dreamdance
from dreamdance.errors import InputError
from dreamdance.scene.caption import LlavaCaptioner

ROOT = Path(__file__).resolve().parents[1]
# Modules whose loaders must never run a folder's code (dreamdance.scene.segment's BiRefNet has
# its own explicit opt-in, segmenter.trust_remote_code).
LOADERS = ("dreamdance/scene/caption.py", "dreamdance/scene/depth.py",
           "dreamdance/scene/inpaint.py", "dreamdance/motion/vitpose.py",
           "dreamdance/animate/components.py", "dreamdance/animate/wan.py",
           "dreamdance/train/stylize.py")


def test_importing_dreamdance_puts_huggingface_hub_offline():
    env = {k: v for k, v in os.environ.items() if k not in dreamdance.OFFLINE_SWITCHES}
    code = ("import dreamdance, huggingface_hub.constants as c; "
            "print(c.HF_HUB_OFFLINE, c.is_offline_mode())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.split() == ["True", "True"]


def test_a_switch_the_user_set_is_kept():
    environ = {"HF_HUB_OFFLINE": "0"}
    dreamdance.hub_offline(environ)
    assert environ == {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"}
    environ = {}
    dreamdance.hub_offline(environ)
    assert environ == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _llava_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava"}))
    return folder


def test_caption_loads_with_local_files_only_and_no_remote_code(tmp_path, monkeypatch):
    import transformers

    calls = []

    class Loaded:
        def to(self, device):
            return self

        def eval(self):
            return self

    class Recorder:
        @classmethod
        def from_pretrained(cls, path, **kwargs):
            calls.append((cls.__name__, Path(path), kwargs))
            return Loaded()

    for name in ("AutoProcessor", "LlavaForConditionalGeneration"):  # not getattr: it is lazy
        monkeypatch.setitem(vars(transformers), name, type(name, (Recorder,), {}))
    folder = _llava_folder(tmp_path / "llava")
    LlavaCaptioner(folder, question="?", fallback="a scene", device="cpu").load()
    assert [name for name, _, _ in calls] == ["AutoProcessor", "LlavaForConditionalGeneration"]
    for _, path, kwargs in calls:
        assert path == folder
        assert kwargs["trust_remote_code"] is False and kwargs["local_files_only"] is True


def test_caption_refuses_a_folder_with_its_own_code_without_asking(tmp_path, monkeypatch):
    folder = _llava_folder(tmp_path / "llava")
    (folder / "processor_config.json").write_text(json.dumps(
        {"processor_class": "Custom", "auto_map": {"AutoProcessor": "custom.Custom"}}))
    (folder / "custom.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('RAN').touch()\n"
        "from transformers import ProcessorMixin\n"
        "class Custom(ProcessorMixin):\n    attributes = []\n")
    asked = []
    monkeypatch.setattr(builtins, "input", lambda *a: asked.append(a) or "y")
    with pytest.raises(InputError, match=f"weights.llava={folder}: cannot be loaded as LLaVA"):
        LlavaCaptioner(folder, question="?", fallback="a scene", device="cpu").load()
    assert asked == [] and not (folder / "RAN").exists()


def _from_pretrained_calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "from_pretrained"):
            yield node.lineno, {k.arg: k.value for k in node.keywords}


@pytest.mark.parametrize("module", LOADERS)
def test_every_from_pretrained_is_local_and_runs_no_folder_code(module):
    calls = list(_from_pretrained_calls(ROOT / module))
    if module.endswith("stylize.py"):  # its loads go through one helper
        assert calls == []
        text = (ROOT / module).read_text()
        assert "loader(folder, local_files_only=True, trust_remote_code=False" in text
        return
    assert calls, module
    for line, kwargs in calls:
        for key, value in (("local_files_only", True), ("trust_remote_code", False)):
            assert isinstance(kwargs.get(key), ast.Constant) and kwargs[key].value is value, (
                f"{module}:{line} lacks {key}={value}")
