"""Property: whatever arguments a user types, the tools answer a mistake with one line on
stderr and a non-zero exit, never a traceback (hexdecode, the PC twin's parse stage,
flash and deploy up to the point where they would start esptool or mpremote)."""
import contextlib
import io
import sys
from unittest import mock

from hypothesis import HealthCheck, given, settings, strategies as st

import deploy
import flash
import hexdecode
import pctwin
from mpy import REPO_ROOT
from pc.parts import UserError

CAPTURE = str(REPO_ROOT / "tools" / "data" / "aidon_demo.hex")
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def files(tmp):
    d = tmp
    (d / "bin").write_bytes(b"\x00\x13\x7e\xa0\x2a" * 50)
    (d / "empty").write_bytes(b"")
    (d / "text").write_bytes(b"hello \xff world\n7e a0\n")
    (d / "json").write_bytes(b'{"mqtt": {"host": "h", "port": 1883}, "device": {"name": 5}}')
    (d / "small.bin").write_bytes(b"\xe9" + bytes(100))
    return [str(d / n) for n in ("bin", "empty", "text", "json", "small.bin")] + [
        str(d), "/nonexistent/x", CAPTURE]


def words(paths, options):
    text = st.text(alphabet=st.characters(blacklist_characters="\x00"),
                   max_size=12)
    return st.lists(st.one_of(st.sampled_from(options), st.sampled_from(paths), text,
                              st.sampled_from(["", "-", "--", "=", "host:abc", "h:1", "[::1]:1883",
                                               "mqtt://h", "0", "-1", "nan", "1e309", "COM3"])),
                    max_size=8)


def run(fn, argv):
    """(status, stdout, stderr) of fn(argv) in this process; SystemExit counts as a status."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), mock.patch.object(sys, "stdin", stdin):
        try:
            status = fn(argv)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
    out.flush()
    return status, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


def one_line_or_success(name, status, stderr, help_asked):
    assert "Traceback" not in stderr
    if status == 0:
        return
    assert status in (1, 2), (status, stderr)
    lines = stderr.splitlines()
    assert lines and all(line.startswith(name + ": ") or line.startswith("frames=") for line in lines), stderr


def test_hexdecode_arguments(tmp_path):
    paths = files(tmp_path)

    @SETTINGS
    @given(words(paths, ["--raw", "--help", "-h", "--foo", "-x", "-"]))
    def check(argv):
        status, out, err = run(hexdecode.main, argv)
        one_line_or_success("hexdecode", status, err, False)
        if status == 2:
            assert err.count("\n") == 1 and out == ""

    check()


def test_pctwin_arguments_parse_stage(tmp_path):
    paths = files(tmp_path)
    options = ["--config", "--broker", "--user", "--password-file", "--replay", "--realtime",
               "--first-hourly", "--name", "--base-topic", "--raw-frames", "--diag-interval",
               "--keepalive", "--state-dir", "--duration", "--parity", "--baud", "--bogus"]

    def parse_only(argv):
        try:
            pctwin.prepare(argv, open_serial=False)
        except UserError as e:
            sys.stderr.write("".join("pctwin: %s\n" % line for line in str(e).splitlines()))
            return e.status
        return 0

    @SETTINGS
    @given(words(paths, options))
    def check(argv):
        status, out, err = run(parse_only, argv)
        one_line_or_success("pctwin", status, err, False)
        if status and "config" not in err and "settings" not in err:
            assert err.count("\n") == 1, err

    check()


def test_flash_and_deploy_arguments(tmp_path):
    paths = files(tmp_path)
    options = ["--port", "--firmware", "--chip", "--baud", "--config", "-v", "--bogus", "esp32s3"]
    stop = flash.Failure("(test) the tool would start here")

    @SETTINGS
    @given(words(paths + ["/dev/does-not-exist"], options), st.booleans())
    def check(argv, use_deploy):
        tool = deploy if use_deploy else flash
        with mock.patch.object(tool, "find_tool", side_effect=stop):
            status, out, err = run(tool.main, argv)
        name = "deploy" if use_deploy else "flash"
        assert "Traceback" not in err
        if status:
            assert err.count("\n") == 1 and err.startswith(name + ": "), err

    check()


def test_names_with_line_breaking_characters_stay_on_one_line():
    # str.splitlines breaks at C1 NEL, U+2028 and U+2029 too: a file name holding one
    # must not split the one-line message.
    for name in ("\x85", "a\u2028b", "c\u2029", "\x1b[31m", "\x7f"):
        status, out, err = run(hexdecode.main, [name])
        assert status == 2 and len(err.splitlines()) == 1, repr(err)
