"""tools.evaluate end to end on tiny synthetic videos, and its bad-input behaviour."""

import json

import numpy as np
import pytest
import torch

from dreamdance.eval import frames as fm
from dreamdance.eval.i3d import InceptionI3d
from dreamdance.eval.lpips import LPIPS
from dreamdance.eval.videos import to_frames
from dreamdance.media import read_video, write_video
from tools import evaluate as tool

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (17, 64, 64, 3), dtype=np.uint8)
    pred = np.clip(ref.astype(int) + rng.integers(-40, 40, ref.shape), 0, 255).astype(np.uint8)
    mask = np.zeros_like(ref)
    mask[:, 16:48, 16:48] = 255
    for name, frames in (("pred", pred), ("ref", ref), ("mask", mask)):
        (root / name).mkdir()
        write_video(root / name / "clip.mp4", frames, fps=8)
    write_video(root / "short.mp4", ref[:10], fps=8)
    write_video(root / "small.mp4", ref[:, :32, :32], fps=8)
    torch.manual_seed(0)
    lp = LPIPS("alex")
    torch.save({f"net.slice1.{k}": v for k, v in lp.features.state_dict().items()}
               | {f"lin{i}.model.1.weight": m.weight.abs() for i, m in enumerate(lp.lins)},
               root / "lpips.pth")
    torch.save(InceptionI3d().state_dict(), root / "i3d.pt")
    return root


@pytest.mark.slow
def test_tool_writes_the_table_and_json_consistent_with_direct_calls(videos, tmp_path, capsys):
    out = tmp_path / "m.json"
    tool.main([f"pred={videos / 'pred'}", f"ref={videos / 'ref'}", f"mask={videos / 'mask'}",
               f"out={out}", "metrics=ssim,psnr,l1,lpips,fid,fid_vid,fvd",
               f"lpips_weights={videos / 'lpips.pth'}", f"i3d_weights={videos / 'i3d.pt'}",
               "clip_length=4"])
    report = json.loads(out.read_text())
    assert list(report["metrics"]) == ["ssim", "psnr", "l1", "lpips", "fid_vid", "fvd"]
    assert report["skipped"] == {"fid": "no inception_weights= given"}
    assert report["frames"] == 17 and report["clips"] == 4 and list(report["videos"]) == ["clip"]
    pred = to_frames(read_video(videos / "pred" / "clip.mp4").frames)
    ref = to_frames(read_video(videos / "ref" / "clip.mp4").frames)
    mask = to_frames(read_video(videos / "mask" / "clip.mp4").frames).mean(1, keepdim=True)
    for name, fn in (("ssim", fm.ssim), ("psnr", fm.psnr), ("l1", fm.l1)):
        assert report["metrics"][name]["full"] == pytest.approx(fn(pred, ref).mean().item(), rel=1e-6)
        assert report["metrics"][name]["foreground"] == pytest.approx(
            fn(pred, ref, mask).mean().item(), rel=1e-6)
    for name in ("lpips", "fid_vid", "fvd"):
        values = report["metrics"][name]
        assert values["full"] > 0 and values["foreground"] is not None
        assert values["full"] != values["foreground"]
    text = capsys.readouterr().out
    assert "FID-VID" in text and "foreground" in text


def test_tool_runs_without_weights_and_identity_is_perfect(videos, tmp_path):
    out = tmp_path / "m.json"
    tool.main([f"pred={videos / 'ref' / 'clip.mp4'}", f"ref={videos / 'ref'}", f"out={out}"])
    report = json.loads(out.read_text())
    assert report["metrics"]["ssim"]["full"] == pytest.approx(1)
    assert report["metrics"]["l1"] == {"full": 0.0, "foreground": None}
    assert set(report["skipped"]) == {"lpips", "fid", "fid_vid", "fvd"}


@pytest.mark.parametrize("args, names", [
    (["pred={root}/missing", "ref={root}/ref"], "pred="),
    (["pred={root}/pred", "ref={root}/short.mp4"], "ref="),
    (["pred={root}/pred", "ref={root}/small.mp4"], "ref="),
    (["pred={root}/pred", "ref={root}/ref", "metrics=lpips", "lpips_weights={root}/none.pth"],
     "lpips_weights="),
    (["pred={root}/pred", "ref={root}/ref", "metrics=ssim,bleu"], "metrics="),
    (["pred={root}/pred", "ref={root}/ref", "colour=1"], "colour"),
    (["pred={root}/pred", "ref={root}/ref", "allow_torchscript=yes"], "allow_torchscript=yes"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(videos, tmp_path, capsys, args, names):
    out = tmp_path / "m.json"
    with pytest.raises(SystemExit) as e:
        tool.main([a.format(root=videos) for a in args] + [f"out={out}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {names}")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_torchscript_i3d_runs_only_with_allow_torchscript(videos, tmp_path, capsys):
    class Stub(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            return x.mean(dim=(3, 4)).flatten(1)

    script = tmp_path / "weights" / "i3d_torchscript.pt"
    script.parent.mkdir()
    torch.jit.script(Stub()).save(str(script))
    out = tmp_path / "m.json"
    argv = [f"pred={videos / 'pred'}", f"ref={videos / 'ref'}", f"out={out}", "metrics=fvd",
            f"i3d_weights={script}", "clip_length=4"]
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "allow_torchscript=true" in err
    tool.main([*argv, "allow_torchscript=true"])
    assert json.loads(out.read_text())["metrics"]["fvd"]["full"] is not None
