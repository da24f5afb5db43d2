"""Test-wide settings: no hub access, remote-code modules cached in a temporary folder, and a
one-thread fixture for tests of tiny models."""

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="dreamdance-hf-modules-"))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not slow down on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _release_run_dirs():
    """Each test ends like a process: the run-directory locks it took are released."""
    yield
    from dreamdance.rundir import release_run_dirs

    release_run_dirs()
