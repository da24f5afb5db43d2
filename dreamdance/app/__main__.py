"""``python -m dreamdance.app [--host 127.0.0.1] [--port 7860] [--runs runs/app] [key=value ...]``

Starts the web app on localhost (``--host 0.0.0.0`` to serve other machines). ``key=value``
arguments are the command line's own (``weights.depthpro=DIR``, ``device=cuda`` …): they decide
which components the page offers and go to every stage it runs. Bad arguments end with one line
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dreamdance.errors import InputError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dreamdance.app",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default localhost)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--runs", type=Path, default=Path("runs/app"),
                        help="where the jobs' run directories go")
    parser.add_argument("overrides", nargs="*", help="key=value, as on the command line")
    args = parser.parse_args(argv)
    try:
        cfg = _config(args.overrides)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    try:
        from dreamdance.app.page import build_page
    except ImportError as e:
        print(f"error: the app needs Gradio ({e}); pip install 'dreamdance[app]'", file=sys.stderr)
        sys.exit(2)
    args.runs.mkdir(parents=True, exist_ok=True)
    page = build_page(cfg, args.runs.resolve(), tuple(args.overrides))
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, allowed_paths=[str(args.runs.resolve())],
        ssr_mode=False, share=False, footer_links=[])


def _config(overrides: list[str]):
    """The command line's config with ``overrides`` (each ``key=value``)."""
    from hydra import compose, initialize_config_module

    from dreamdance.run import check_overrides

    bad = [o for o in overrides if "=" not in o or o.split("=", 1)[0] in ("stage", "out")]
    if bad:
        raise InputError(bad[0], "expected key=value (stage= and out= are the app's own)")
    check_overrides(overrides)
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


if __name__ == "__main__":
    main()
