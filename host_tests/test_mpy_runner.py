"""Tests of tools/mpy_run.mjs itself: the harness every MicroPython test relies on."""

import subprocess
import sys

import pytest

from mpy import describe, node_path, RUNNER

OUTPUT_SCRIPT = r'''
import sys
sys.stdout.write("h\u00e9llo w\u00f6rld \u2713 \U0001f600\n")
print("x" * 10000)
print("a\r\nb\tc", end="")
sys.stdout.write("\n\n")
for i in range(300):
    sys.stdout.write("%d," % i)
print()
print("no trailing newline", end="")
'''


def _script(tmp_path, text, name="s.py"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_is_micropython_1_29(mpy, tmp_path):
    s = _script(tmp_path, "import sys\n"
                          "print(sys.implementation.name)\n"
                          "print(sys.implementation.version[:2])\n")
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    assert r.stdout == b"micropython\n(1, 29)\n", describe(r)


def test_stdout_is_byte_exact_like_cpython(mpy, tmp_path):
    s = _script(tmp_path, OUTPUT_SCRIPT)
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    cp = subprocess.run([sys.executable, str(s)], stdout=subprocess.PIPE,
                        env={"PYTHONIOENCODING": "utf-8", "PATH": ""})
    assert cp.returncode == 0
    assert r.stdout == cp.stdout
    assert r.stdout.endswith(b"no trailing newline")
    assert "\U0001f600".encode("utf-8") in r.stdout
    assert r.stderr == b""


def test_stderr_is_byte_exact(mpy, tmp_path):
    s = _script(tmp_path, "import sys\nsys.stderr.write('err \u2713 no newline')\n")
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    assert r.stderr == "err \u2713 no newline".encode("utf-8")
    assert r.stdout == b""


def test_argv_name_and_file(mpy, tmp_path):
    s = _script(tmp_path, "import sys\nprint(sys.argv[1:], __name__, __file__)\n",
                name="argv.py")
    r = mpy(s, args=["one", "two words", "\u00e6\u00f8\u00e5"])
    assert r.returncode == 0, describe(r)
    assert r.stdout == "['one', 'two words', '\u00e6\u00f8\u00e5'] __main__ /script/argv.py\n".encode()


def test_script_globals_are_clean(mpy, tmp_path):
    s = _script(tmp_path, "print(sorted(k for k in globals() if not k.startswith('__')))\n")
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    assert r.stdout == b"[]\n", describe(r)


def test_exit_codes(mpy, tmp_path):
    s = _script(tmp_path, "import sys\n"
                          "a = sys.argv[1]\n"
                          "print('ran')\n"
                          "if a == 'none': sys.exit()\n"
                          "if a == 'str': sys.exit('bye')\n"
                          "if a != 'fall': raise SystemExit(int(a))\n")
    for arg, code in (("fall", 0), ("none", 0), ("0", 0), ("3", 3), ("42", 42)):
        r = mpy(s, args=[arg])
        assert r.returncode == code, describe(r)
        assert r.stdout == b"ran\n" and r.stderr == b"", describe(r)
    r = mpy(s, args=["str"])
    assert r.returncode == 1 and r.stderr == b"bye\n", describe(r)


def test_exception_prints_python_traceback_only(mpy, tmp_path):
    s = _script(tmp_path, "def f(x):\n    return 1 // x\nprint('before')\nf(0)\n",
                name="boom.py")
    r = mpy(s)
    assert r.returncode == 1, describe(r)
    assert r.stdout == b"before\n"
    assert r.stderr == (b"Traceback (most recent call last):\n"
                        b'  File "/script/boom.py", line 4, in <module>\n'
                        b'  File "/script/boom.py", line 2, in f\n'
                        b"ZeroDivisionError: divide by zero\n"), describe(r)


def test_syntax_error_exits_1(mpy, tmp_path):
    s = _script(tmp_path, "def f(:\n    pass\n")
    r = mpy(s)
    assert r.returncode == 1, describe(r)
    assert b"SyntaxError" in r.stderr and b"micropython.mjs" not in r.stderr, describe(r)


def test_memory_error_respects_heap(mpy, tmp_path):
    s = _script(tmp_path, "b = bytearray(200 * 1024)\nprint(len(b))\n")
    assert mpy(s, heap="1m").stdout == b"204800\n"
    r = mpy(s, heap="64k")
    assert r.returncode == 1 and b"MemoryError" in r.stderr, describe(r)


def test_file_option_is_binary_safe(mpy, tmp_path):
    blob = bytes(range(256)) * 3 + b"\r\n\x00\xff"
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "helper.py").write_text("VALUE = 'from helper'\n")
    s = _script(tmp_path, "import sys\n"
                          "sys.path.append('/extra')\n"
                          "import helper\n"
                          "d = open('/data/deep/dir/blob.bin', 'rb').read()\n"
                          "print(len(d), sum(d), d[-4:], helper.VALUE)\n")
    r = mpy(s, files=[(tmp_path / "blob.bin", "/data/deep/dir/blob.bin"),
                      (tmp_path / "helper.py", "/extra/helper.py")])
    assert r.returncode == 0, describe(r)
    assert r.stdout == ("%d %d b'\\r\\n\\x00\\xff' from helper\n" % (len(blob), sum(blob))).encode()


def test_stdin_option(mpy, tmp_path):
    data = "line 1\nl\u00edne 2 \u2713\nno newline".encode("utf-8")
    s = _script(tmp_path, "import sys\n"
                          "d = open('/stdin', 'rb').read()\n"
                          "print(len(d), repr(d.decode()))\n"
                          "print(repr(sys.stdin.read()))\n")
    r = mpy(s, stdin=data)
    assert r.returncode == 0, describe(r)
    text = data.decode()
    assert r.stdout == ("%d %r\n%r\n" % (len(data), text, text)).encode("utf-8"), describe(r)


def test_lib_and_tools_are_importable(mpy, repo_root, tmp_path):
    s = _script(tmp_path, "import sys, os\n"
                          "import hanport\n"
                          "from hanport import ports\n"
                          "print(hanport.__file__)\n"
                          "print('/lib' in sys.path, '/tools' in sys.path)\n"
                          "print(sorted(os.listdir('/tools')))\n")
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "/lib/hanport/__init__.py"
    assert lines[1] == "True True"
    host_tools = sorted(p.name for p in (repo_root / "tools").iterdir()
                        if p.name != "__pycache__")
    assert lines[2] == repr(host_tools)


def test_lib_tree_is_copied_whole(mpy, repo_root, tmp_path):
    host = sorted(p.relative_to(repo_root / "lib").as_posix()
                  for p in (repo_root / "lib").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)
    s = _script(tmp_path, "import os\n"
                          "def walk(d, pre):\n"
                          "    for name, kind, *_ in os.ilistdir(d):\n"
                          "        if kind == 0x4000:\n"
                          "            yield from walk(d + '/' + name, pre + name + '/')\n"
                          "        else:\n"
                          "            yield pre + name\n"
                          "for f in sorted(walk('/lib', '')):\n"
                          "    print(f)\n")
    r = mpy(s)
    assert r.returncode == 0, describe(r)
    assert r.stdout.decode().splitlines() == host


def test_usage_error_exits_2(tmp_path):
    node = node_path()
    r = subprocess.run([node, str(RUNNER), "--bogus"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"usage:" in r.stderr
    r = subprocess.run([node, str(RUNNER), str(tmp_path / "missing.py")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"cannot read script" in r.stderr


def test_source_text_and_string_file_specs(mpy, tmp_path):
    (tmp_path / "d.txt").write_bytes(b"abc")
    r = mpy("import sys\nprint(open('/x/d.txt').read(), __file__, sys.argv[1:])\n",
            args=["q"], files=["%s:/x/d.txt" % (tmp_path / "d.txt")])
    assert r.returncode == 0, describe(r)
    assert r.stdout == b"abc /script/script.py ['q']\n"


def test_mpy_steps_run_one_by_one_with_a_collection_before_each(mpy):
    src = (
        "import gc\n"
        "base = [0]\n"
        "def mark():\n"
        "    base[0] = gc.mem_alloc()\n"
        "def churn():\n"
        "    for _ in range(200):\n"
        "        x = bytearray(1000)\n"
        "def report():\n"
        "    print('held', gc.mem_alloc() - base[0] < 2000)\n"
        "def stop():\n"
        "    raise SystemExit(3)\n"
        "def never():\n"
        "    print('not reached')\n"
        "MPY_STEPS = [mark, churn, report, stop, never]\n"
    )
    r = mpy(src)
    assert r.stdout == b"held True\n"
    assert r.returncode == 3


# -- --mpy: the compiled files the device gets ------------------------------------

@pytest.fixture(scope="module")
def mpy_build(tmp_path_factory):
    """lib/ and firmware/ compiled by tools/deploy.py's build(), as for the device."""
    import deploy

    out = tmp_path_factory.mktemp("mpybuild")
    assert deploy.build(str(out)) > 10
    return out / "lib"


def test_mpy_option_mounts_the_compiled_files_as_lib(mpy, mpy_build, repo_root):
    src = ("import os\n"
           "import hanport.decode, firmware.storage\n"
           "print(hanport.decode.__file__, firmware.storage.__file__)\n"
           "print(sorted(set(n.rsplit('.', 1)[1] for n in os.listdir('/lib/hanport'))))\n")
    r = mpy(src, mpy_dir=mpy_build)
    assert r.returncode == 0, describe(r)
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "/lib/hanport/decode.mpy /lib/firmware/storage.mpy"
    assert lines[1] == "['mpy']"  # no .py beside them to shadow the bytecode


def test_compiled_decoder_gives_the_same_reading_as_the_source(mpy, mpy_build):
    frame = "7ea02a410883130413e6e7000f40000000000101020309060100010700ff06000006a002020f00161b81df7e"
    src = ("from binascii import unhexlify\n"
           "from hanport.hdlc import Deframer\n"
           "from hanport.decode import Decoder\n"
           "from hanport.publish import reading_payload\n"
           "import hanport.decode as d\n"
           "out = []\n"
           "dec = Decoder()\n"
           "Deframer(lambda apdu, f: out.append(reading_payload(dec.decode(apdu), 1))).feed(unhexlify(%r))\n"
           "print(d.__file__, out)\n" % frame)
    compiled = mpy(src, mpy_dir=mpy_build)
    source = mpy(src)
    assert compiled.returncode == 0 and source.returncode == 0, describe(compiled) + describe(source)
    c_file, c_out = compiled.stdout.decode().split(" ", 1)
    s_file, s_out = source.stdout.decode().split(" ", 1)
    assert (c_file, s_file) == ("/lib/hanport/decode.mpy", "/lib/hanport/decode.py")
    assert c_out == s_out and "list" in c_out


def test_mpy_option_keeps_the_other_options_working(mpy, mpy_build, tmp_path):
    (tmp_path / "d.bin").write_bytes(b"\x00\x01")
    r = mpy("import sys, gc\nprint(open('/x/d.bin','rb').read(), sys.stdin.read(), sys.argv[1:])\n",
            args=["a"], files=["%s:/x/d.bin" % (tmp_path / "d.bin")], stdin=b"in",
            heap="256k", mpy_dir=mpy_build)
    assert r.returncode == 0, describe(r)
    assert r.stdout == b"b'\\x00\\x01' in ['a']\n"


def test_mpy_option_needs_a_directory(tmp_path):
    node = node_path()
    r = subprocess.run([node, str(RUNNER), "--mpy", str(tmp_path / "nope"), "x.py"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"--mpy" in r.stderr
