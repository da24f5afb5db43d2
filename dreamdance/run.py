"""The command line: ``python -m dreamdance.run stage=<name> key=value ...``.

Dispatches to ``stages/<name>.py``. Bad input — an unknown key or option, a missing file, a
corrupt image — ends with one line on stderr naming the input and the problem, and exit code 2.
A full disk ends with one line and exit code 1; any other failure with its traceback (exit 1),
which is also written to the run's log (``out/logs/``).
"""

from __future__ import annotations

import errno
import importlib
import logging
import sys
import traceback

import hydra
from omegaconf import DictConfig

from dreamdance.errors import InputError

log = logging.getLogger("dreamdance")
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1  # a failure that is not the input's fault (a crash, a full disk)


def run_stage(cfg: DictConfig) -> None:
    """Run the stage named by ``cfg.stage.name`` (raises :class:`InputError` on bad input);
    the run directory's lock is released afterwards."""
    from dreamdance.rundir import release_run_dirs

    try:
        importlib.import_module(f"stages.{cfg.stage.name}").run(cfg)
    finally:
        release_run_dirs()


@hydra.main(version_base="1.3", config_path="pkg://dreamdance.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run_stage(cfg)
    except InputError as e:
        _to_log_files(logging.ERROR, f"bad input: {e}")
        _fail(str(e))
    except KeyboardInterrupt:
        _to_log_files(logging.ERROR, "interrupted")
        raise
    except OSError as e:
        _to_log_files(logging.ERROR, f"failed:\n{traceback.format_exc()}")
        if e.errno == errno.ENOSPC:
            where = f" (writing {e.filename})" if e.filename else ""
            _fail(f"no space left on the device{where}: free some and run again (finished "
                  "steps are kept)", EXIT_FAILED)
        raise
    except BaseException:
        _to_log_files(logging.ERROR, f"failed:\n{traceback.format_exc()}")
        raise


def check_overrides(argv: list[str]) -> None:
    """Compose the config once with the command line's overrides; a bad one is ``InputError``.

    Hydra would report an unknown key or option in several lines and exit 1; we say it in one
    line and exit 2, like every other bad input.
    """
    from hydra import compose, initialize_config_module
    from hydra._internal.utils import get_args_parser
    from hydra.errors import HydraException, MissingConfigException

    overrides = get_args_parser().parse_args(argv).overrides
    try:
        with initialize_config_module("dreamdance.conf", version_base="1.3"):
            compose("config", overrides=overrides, return_hydra_config=True)
    except MissingConfigException as e:
        choice = next((o for o in overrides if e.missing_cfg_file and
                       o.split("=")[0].lstrip("+~") in e.missing_cfg_file), e.missing_cfg_file)
        options = f"; choose one of: {', '.join(e.options)}" if e.options else ""
        raise InputError(str(choice), f"unknown option{options}") from None
    except HydraException as e:
        message = str(e).strip().splitlines()[0]
        cause = e.__cause__
        if "Could not override" in message:
            key = message.split("'")[1]
            raise InputError(key, "unknown config key (see --help for the keys)") from None
        detail = f" ({str(cause).splitlines()[0]})" if cause else ""
        raise InputError("command line", f"{message}{detail}") from None


def main() -> None:
    try:
        check_overrides(sys.argv[1:])
        _hydra_main()
    except InputError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _to_log_files(level: int, message: str) -> None:
    """Record ``message`` in the run's log files only (the console gets the one-line error)."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


if __name__ == "__main__":
    main()
