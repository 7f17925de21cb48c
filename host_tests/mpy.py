"""Run a script under the official WebAssembly MicroPython (tools/mpy_run.mjs).

    from mpy import run_mpy          # or use the `mpy` fixture from conftest.py
    r = run_mpy("tools/x.py", args=["a"], files=[(host_path, "/data/f.bin")],
                stdin=b"...", heap="1m", mpy_dir=None)
    r = run_mpy("import hanport\nprint(1)\n")   # source text: any str with a newline
    r.returncode, r.stdout, r.stderr   # stdout/stderr are bytes, byte-exact

Inside MicroPython: the repo's lib/ is at /lib and tools/ at /tools (both on
sys.path), sys.argv == [script, *args], __name__ == '__main__'. With mpy_dir (a
tree of .mpy files as tools/deploy.py's build() makes it, e.g. OUT/lib), /lib
holds those compiled files instead of the lib/ sources. With stdin given,
the data is in the file /stdin and on sys.stdin; portable scripts should read
/stdin when sys.implementation.name == 'micropython'.

Missing node or node_modules make the calling test FAIL (never skip: a skipped
test in CI hides a broken set-up). Run `make setup` to install them.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNNER = REPO_ROOT / "tools" / "mpy_run.mjs"
MPY_PACKAGE = REPO_ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def node_path():
    """The node binary to use ($NODE overrides PATH); fails the test when missing."""
    node = os.environ.get("NODE") or shutil.which("node")
    if not node:
        pytest.fail(
            "node is not installed (not on PATH and $NODE unset): the MicroPython "
            "tests need Node.js 20+. Install it (Debian: apt-get install nodejs npm), "
            "then run `make setup`.",
            pytrace=False,
        )
    if not (MPY_PACKAGE / "package.json").is_file():
        pytest.fail(
            "WebAssembly MicroPython is not installed (%s is missing): run `make setup` "
            "(or `npm ci`) in %s." % (MPY_PACKAGE, REPO_ROOT),
            pytrace=False,
        )
    return node


def _file_pairs(files):
    if hasattr(files, "items"):
        files = files.items()
    for item in files:
        if isinstance(item, str):
            host, sep, target = item.rpartition(":")
            if not sep or not host:
                raise ValueError("files entry must be (host, mp_path) or 'HOST:MPPATH': %r" % item)
        else:
            host, target = item
        host = Path(host)
        if not host.is_absolute():
            host = REPO_ROOT / host
        yield "--file", "%s:%s" % (host, target)


def run_mpy(script, args=(), files=(), stdin=None, heap="1m", timeout=120, mpy_dir=None):
    """Run `script` under MicroPython.

    script: a path (absolute or relative to the repo root), or Python source text
    (a str containing a newline), which runs as /script/script.py.
    files: pairs (host_path, micropython_path), 'HOST:MPPATH' strings, or a dict;
    host files are copied byte for byte (parent directories are created).
    stdin: bytes or str (UTF-8) given to the script as /stdin and sys.stdin.
    Returns subprocess.CompletedProcess with bytes stdout and stderr; a Python
    exception gives returncode 1 and its traceback on stderr, SystemExit(n) gives n.
    """
    node = node_path()
    if isinstance(script, str) and "\n" in script:
        with tempfile.TemporaryDirectory(prefix="mpy_run_") as d:
            path = Path(d) / "script.py"
            path.write_text(script, encoding="utf-8")
            return run_mpy(path, args, files, stdin, heap, timeout, mpy_dir)
    cmd = [node, str(RUNNER), "--heap", str(heap)]
    if mpy_dir is not None:
        cmd += ["--mpy", str(mpy_dir)]
    for pair in _file_pairs(files):
        cmd.extend(pair)
    if stdin is not None:
        cmd.append("--stdin")
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
    cmd.append("--")
    cmd.append(str(script))
    cmd.extend(str(a) for a in args)
    try:
        return subprocess.run(
            cmd,
            cwd=str(REPO_ROOT),
            input=stdin if stdin is not None else b"",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            "MicroPython run timed out after %ss: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
            % (timeout, " ".join(cmd), _text(e.stdout), _text(e.stderr)),
            pytrace=False,
        )


def _text(b):
    return (b or b"").decode("utf-8", "replace")


def describe(result):
    """Readable text of a CompletedProcess, for assertion messages."""
    return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        result.returncode, _text(result.stdout), _text(result.stderr))
