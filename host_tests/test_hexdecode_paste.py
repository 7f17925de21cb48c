"""tools/hexdecode.py takes what people paste, says where a frame is wrong, and
answers every user error with one line on stderr; CPython and MicroPython agree."""
import json
import subprocess
import sys

import pytest

import framebuild as fb
from corpus import BY_ID
from mpy import REPO_ROOT, run_mpy

HEXDECODE = str(REPO_ROOT / "tools" / "hexdecode.py")
L1 = bytes.fromhex(BY_ID["aidon_6525_it_list1"]["hex"])
L3 = bytes.fromhex(BY_ID["aidon_6525_it_list3_a"]["hex"])


def cpython(args, stdin=b""):
    return subprocess.run([sys.executable, HEXDECODE] + args, input=stdin, capture_output=True, timeout=60)


def both(tmp_path, data):
    """Run the paste through CPython and MicroPython; they must print the same bytes."""
    path = tmp_path / "paste.txt"
    path.write_bytes(data)
    c = cpython([str(path)])
    m = run_mpy(HEXDECODE, args=["/paste.txt"], files=[(str(path), "/paste.txt")])
    assert b"Traceback" not in c.stderr + m.stderr, (c.stderr, m.stderr)
    assert m.stdout == c.stdout, (m.stdout, c.stdout)
    assert m.returncode == c.returncode
    return c.returncode, [json.loads(line) for line in c.stdout.decode().splitlines()], c.stderr.decode()


def spaced(frame, sep=" ", fmt="%02x"):
    return sep.join(fmt % b for b in frame)


PASTES = {
    "0x list": ", ".join("0x%02X" % b for b in L1) + ",",
    "C array": "{ " + ", ".join("0x%02x" % b for b in L1) + " };",
    "colons": spaced(L1, ":"),
    "commas": spaced(L1, ","),
    "no separators": L1.hex(),
    "upper case": L1.hex().upper(),
    "without flags": L1[1:-1].hex(" "),
    "without closing flag": L1[:-1].hex(" "),
    "nbsp between bytes": spaced(L1, "\u00a0"),
    "ideographic space and BOM": "\ufeff\u3000" + spaced(L1) + "\u2003",
}


@pytest.mark.parametrize("text", PASTES.values(), ids=list(PASTES))
def test_a_pasted_frame_in_any_common_shape_decodes(tmp_path, text):
    rc, lines, _ = both(tmp_path, ("# pasted\n" + text + "\n").encode())
    assert rc == 0
    assert [(x["ok"], x["list"], x["label"]) for x in lines] == [(True, 1, "line 2")]


def test_non_utf8_bytes_anywhere_do_not_stop_the_run(tmp_path):
    data = (b"# m\xe5ling fra m\xf8rkeloggeren \xff\n" + L1.hex(" ").encode() + b"\n"
            + b"stue\xe5\t" + L1.hex(" ").encode() + b"\n" + b"\xff\xfe\n")
    rc, lines, _ = both(tmp_path, data)
    assert rc == 0
    assert [(x["ok"], x["label"]) for x in lines] == [(True, "line 2"), (True, "stue?"), (False, "line 4")]
    assert lines[2]["error"] == "hex" and lines[2]["detail"].startswith("line 4 byte 1:")


def test_a_frame_split_over_lines_two_on_one_line_and_a_shared_flag(tmp_path):
    h = L3.hex(" ")
    text = "\n".join([h[:99], h[99:501], h[501:],             # lines 1-3: one frame
                      L1.hex(" ") + " " + L1.hex(" "),            # line 4: two frames
                      L1[:-1].hex(" ") + " " + L1.hex(" ")])      # line 5: one flag between them
    rc, lines, _ = both(tmp_path, (text + "\n").encode())
    assert rc == 0
    assert [(x["label"], x["ok"], x["list"]) for x in lines] == [
        ("lines 1-3", True, 3), ("line 4", True, 1), ("line 4 @133", True, 1),
        ("line 5", True, 1), ("line 5 @130", True, 1)]


def test_hexdump_and_xxd_output_decode(tmp_path):
    stream = b"\x00\x13" + L3 + L1 + L3
    dump = []
    for off in range(0, len(stream), 16):
        row = stream[off:off + 16]
        hexpart = " ".join("%02x" % b for b in row[:8]) + "  " + " ".join("%02x" % b for b in row[8:])
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        dump.append("%08x  %-48s  |%s|" % (off, hexpart, ascii_))
    dump.append("%08x" % len(stream))
    rc, lines, _ = both(tmp_path, ("\n".join(dump) + "\n").encode())
    assert rc == 0
    assert [(x["ok"], x["error"], x["list"]) for x in lines] == [
        (False, "flag", None), (True, None, 3), (True, None, 1), (True, None, 3)]
    assert lines[0]["detail"] == "line 1 byte 11: 0x00 where a frame starts with 0x7E (2 bytes that are not a frame)"
    xxd = []
    for off in range(0, len(L1), 16):
        row = L1[off:off + 16]
        groups = " ".join(row[i:i + 2].hex() for i in range(0, len(row), 2))
        xxd.append("%08x: %-39s  %s" % (off, groups, "".join(chr(b) if 32 <= b < 127 else "." for b in row)))
    rc, lines, _ = both(tmp_path, ("\n".join(xxd) + "\n").encode())
    assert [(x["ok"], x["list"]) for x in lines] == [(True, 1)]


def test_a_wrong_checksum_says_where_and_what_was_expected(tmp_path):
    bad = bytearray(L1)
    bad[-2] ^= 0x01  # FCS high byte
    hdr = bytearray(L3)
    hdr[7] ^= 0xFF  # HCS low byte
    text = "meter\t%s\n%s\n" % (bad.hex(" "), hdr.hex(" "))
    rc, lines, err = both(tmp_path, text.encode())
    assert rc == 1 and "no frame decoded" in err
    assert lines[0]["error"] == "fcs"
    assert lines[0]["detail"] == "line 1 byte %d: frame check (FCS) is 81 de, expected 81 df" % (7 + 3 * 41)
    assert lines[1]["error"] == "hcs"
    assert lines[1]["detail"] == "line 2 byte 22: header check (HCS) is c6 1e, expected 39 1e"


def test_short_long_and_not_hex_lines_say_where(tmp_path):
    text = "\n".join([
        L1[:-5].hex(" "),                 # 1: cut short
        L1.hex(" ") + " 00 11",           # 2: bytes after the closing flag
        L1[:-1].hex(" ") + " 00 11",      # 3: the length field points at 0x00, not 0x7E
        L1.hex(" ")[:30] + " zz 7e",      # 4: not hex
        "7e a0 2a 41 0",                  # 5: odd digit
        "7e 13 00",                       # 6: not a frame header
        L1.hex(" "),                      # 7: fine
    ])
    rc, lines, _ = both(tmp_path, (text + "\n").encode())
    assert rc == 0
    got = [(x["label"], x["error"], x.get("detail")) for x in lines]
    assert got == [
        ("line 1", "short", "line 1 byte 1: the length field says 42 bytes, the paste has 38"),
        ("line 2", None, None),
        ("line 2 @133", "flag", "line 2 byte 133: 0x00 where a frame starts with 0x7E (2 bytes that are not a frame)"),
        ("line 3", "length", "line 3 byte 130: the length field says 42 bytes, then comes 0x00, not the closing 0x7E"),
        ("line 4", "hex", "line 4 byte 32: 'zz' is not hex"),
        ("line 5", "hex", "line 5 byte 13: '0' has an odd number of hex digits"),
        ("line 6", "format", "line 6 byte 4: 0x13 after the 0x7E flag, a type 3 frame header is A0-A7"),
        ("line 7", None, None),
    ]


def test_labelled_one_frame_per_line_files_still_decode_line_by_line(tmp_path):
    corpus = (REPO_ROOT / "host_tests" / "data" / "corpus.hex").read_bytes()
    rc, lines, _ = both(tmp_path, corpus)
    labels = [line.split(b"\t")[0].decode() for line in corpus.splitlines() if line and not line.startswith(b"#")]
    assert rc == 0 and [x["label"] for x in lines] == labels
    for x in lines:
        assert ("detail" in x) == (not x["ok"])


def test_usage_errors_are_one_line_on_stderr(tmp_path):
    binary = tmp_path / "capture.bin"
    binary.write_bytes(b"\x00\x13" + L1)
    cases = [
        (["/nonexistent/frames.hex"], "cannot read /nonexistent/frames.hex: no such file"),
        ([str(tmp_path)], "cannot read %s: it is a directory" % tmp_path),
        (["--foo"], "unknown option --foo"),
        (["--raw"], "--raw needs a FILE"),
        (["a.hex", "b.hex"], "one input at a time"),
        ([str(binary)], "looks like a binary capture, not hex text: use --raw"),
    ]
    for args, says in cases:
        r = cpython(args)
        err = r.stderr.decode()
        assert r.returncode == 2 and r.stdout == b"", (args, r)
        assert err.count("\n") == 1 and err.startswith("hexdecode: ") and says in err, (args, err)


def test_usage_errors_are_the_same_on_micropython():
    for args, says in ((["/nonexistent.hex"], b"no such file"), (["/lib"], b"it is a directory"),
                       (["--foo"], b"unknown option --foo")):
        r = run_mpy(HEXDECODE, args=args)
        assert r.returncode == 2 and says in r.stderr and r.stderr.count(b"\n") == 1, r


def test_raw_from_standard_input_and_no_frame_is_a_failure(tmp_path):
    stream = b"\x00" + L1 + L3
    c = cpython(["--raw", "-"], stdin=stream)
    m = run_mpy(HEXDECODE, args=["--raw", "-"], stdin=stream)
    assert c.returncode == m.returncode == 0 and c.stdout == m.stdout and c.stdout.count(b'"ok": true') == 2
    r = cpython(["--raw", "-"], stdin=b"\x00\x01\x02")
    assert r.returncode == 1 and b"no frame decoded" in r.stderr
    r = cpython(["-"], stdin=b"")
    assert r.returncode == 1 and r.stderr == b"hexdecode: no frame decoded in standard input\n"


def test_on_a_terminal_it_says_it_waits_for_standard_input():
    import os
    import pty

    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, HEXDECODE], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        os.write(master, L1.hex(" ").encode() + b"\n\x04")
        out, err = p.communicate(timeout=30)
    finally:
        os.close(master)
        os.close(slave)
    assert b"reading hex frames from standard input" in err and b"Ctrl-D" in err
    assert p.returncode == 0 and b'"ok": true' in out


def test_a_frame_built_for_the_test_decodes_from_a_python_bytes_list(tmp_path):
    frame = fb.push_frame(fb.array(fb.structure(fb.obis(1, 0, 1, 7, 0), fb.u32(1234), fb.scaler_unit(0, 27))))
    text = "[" + ", ".join("0x%02x" % b for b in frame) + "]\n"
    rc, lines, _ = both(tmp_path, text.encode())
    assert rc == 0 and lines[0]["obis"] == {"1-0:1.7.0.255": 1234}


def test_a_long_hexdump_decodes_every_frame_with_a_small_buffer():
    from pc.capture import Paste

    stream = b"".join([L1, L3] * 150)
    paste = Paste()
    got = []
    biggest = 0
    for n, off in enumerate(range(0, len(stream), 16)):
        row = stream[off:off + 16]
        paste.feed(b"%08x  %s  |................|" % (off, " ".join("%02x" % b for b in row).encode()))
        got += paste.take()
        biggest = max(biggest, len(paste.buf))
    paste.end()
    got += paste.take()
    assert [c.frame for c in got] == [L1, L3] * 150 and all(c.error is None for c in got)
    assert biggest < 2 * len(L3) + 32 * 16
    assert got[-1].label.startswith("lines ")
