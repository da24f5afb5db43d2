"""The evaluation report: a printed table and a JSON file."""

from __future__ import annotations

from pathlib import Path

from dreamdance.io import write_json

NAMES = {"ssim": "SSIM ↑", "psnr": "PSNR ↑", "l1": "L1 ↓", "lpips": "LPIPS ↓", "fid": "FID ↓",
         "fid_vid": "FID-VID ↓", "fvd": "FVD ↓"}


def _cell(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3e}" if metric == "l1" else f"{value:.4f}"


def format_table(result: dict) -> str:
    """Rows ``metric | whole frame | foreground`` for ``result["metrics"]`` (see
    :func:`dreamdance.eval.evaluate.evaluate`)."""
    rows = [("metric", "whole frame", "foreground")]
    for metric, values in result["metrics"].items():
        rows.append((NAMES.get(metric, metric), _cell(values.get("full"), metric),
                     _cell(values.get("foreground"), metric)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def write_report(path: str | Path, result: dict, inputs: dict) -> Path:
    """Write ``{"inputs": ..., **result}`` as JSON atomically; return the path."""
    return write_json(path, {"inputs": inputs, **result})
