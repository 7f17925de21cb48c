"""Proof on real MicroPython: lib/ decodes every frame as CPython does, byte for byte.

tools/hexdecode.py runs under the official WebAssembly MicroPython 1.29 and
under CPython on the same input; their outputs must be identical.
"""
import subprocess
import sys

import framebuild as fb
import test_variants
from corpus import FRAMES
from mpy import REPO_ROOT, run_mpy

HEXDECODE = str(REPO_ROOT / "tools" / "hexdecode.py")


def cpython(args, stdin=None):
    done = subprocess.run([sys.executable, HEXDECODE] + args, input=stdin, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def variant_lines():
    """Frames built for the variants the corpus lacks, as hex lines."""
    frames = {
        "kaifa_1ph_list3": fb.push_frame(fb.structure(
            *test_variants.KAIFA_HEAD, fb.u32(1520), fb.u32(0), fb.u32(210), fb.u32(0), fb.i32(-6700), fb.u32(2311),
            fb.octets(fb.clock(2024, 1, 2, 4, 0, 0)), fb.u32(123456789), fb.u32(0), fb.u32(4567), fb.u32(89)),
            fb.octets(fb.clock(2024, 1, 2, 4, 0, 10))),
        "kamstrup_1ph_null": fb.push_frame(test_variants.kamstrup_body(False, False), b"\x0c" + fb.clock(2024, 3, 1, 12, 0, 0)),
        "kamstrup_hourly": fb.push_frame(test_variants.kamstrup_body(True, True, hourly=True)),
        "float32_exact": fb.push_frame(fb.array(fb.structure(fb.obis(1, 0, 1, 7, 0), b"\x17\x40\x49\x0f\xdb"))),
        "int64": fb.push_frame(fb.array(fb.structure(fb.obis(1, 0, 1, 8, 0), b"\x14" + b"\xff" * 8, fb.scaler_unit(-3, 30)))),
        "uint64": fb.push_frame(fb.array(fb.structure(fb.obis(1, 0, 1, 8, 0), b"\x15" + b"\xff" * 8, fb.scaler_unit(3, 30)))),
    }
    return "".join("%s\t%s\n" % (label, frame.hex(" ")) for label, frame in frames.items())


def test_hexdecode_output_is_byte_identical_on_micropython(tmp_path):
    corpus = REPO_ROOT / "host_tests" / "data" / "corpus.hex"
    variants = tmp_path / "variants.hex"
    variants.write_text(variant_lines())
    for path in (corpus, variants):
        expected = cpython([str(path)]).stdout
        got = run_mpy(HEXDECODE, args=["/input.hex"], files=[(str(path), "/input.hex")])
        assert got.returncode == 0, got.stderr
        assert got.stdout == expected
    assert expected.count(b"\n") == 6 and b'"ok": true' in expected


def test_hexdecode_reads_standard_input_on_micropython():
    text = "".join("%s\t%s\n" % (f["id"], f["hex"]) for f in FRAMES[:5]).encode()
    got = run_mpy(HEXDECODE, stdin=text)
    assert got.returncode == 0, got.stderr
    assert got.stdout == cpython([], stdin=text).stdout


def test_a_raw_capture_through_the_deframer_is_identical_on_micropython(tmp_path):
    stream = tmp_path / "capture.bin"
    stream.write_bytes(b"\x00\x7e" + b"".join(bytes.fromhex(f["hex"]) for f in FRAMES) + bytes.fromhex(FRAMES[0]["hex"]))
    expected = cpython(["--raw", str(stream)])
    got = run_mpy(HEXDECODE, args=["--raw", "/capture.bin"], files=[(str(stream), "/capture.bin")])
    assert got.returncode == 0, got.stderr
    assert got.stdout == expected.stdout and got.stderr == expected.stderr
    assert expected.stdout.count(b'"ok": true') == 25  # 24 good frames and the repeat
