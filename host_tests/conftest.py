"""Shared pytest set-up for the host tests.

CPython tests import the portable package and the host tools directly: lib/,
tools/ and the repo root are put on sys.path. MicroPython runs go through the
`mpy` fixture (host_tests/mpy.py, tools/mpy_run.mjs).
"""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

for _p in (REPO_ROOT, REPO_ROOT / "tools", REPO_ROOT / "lib", HERE):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from mpy import run_mpy  # noqa: E402  (needs HERE on sys.path)


@pytest.fixture(scope="session")
def repo_root():
    """The repository's root directory (pathlib.Path)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def mpy():
    """run_mpy(script, args=(), files=(), stdin=None, heap="1m", timeout=120, mpy_dir=None)."""
    return run_mpy
