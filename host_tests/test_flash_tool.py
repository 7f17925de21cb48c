"""tools/flash.py checks the image before it erases anything, and names MicroPython's boards."""
import os
import stat
import struct
import subprocess
import sys

import pytest

from mpy import REPO_ROOT

FLASH = str(REPO_ROOT / "tools" / "flash.py")


@pytest.fixture
def fake_esptool(tmp_path):
    """An esptool on PATH that records its arguments and succeeds."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.txt"
    tool = bindir / "esptool"
    tool.write_text("#!/bin/sh\necho \"$@\" >> %s\necho ok\n" % log)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    return env, log


def image(tmp_path, chip_id=0, size=200 * 1024, magic=0xE9, name="fw.bin"):
    path = tmp_path / name
    head = bytes([magic, 3, 2, 0x20]) + struct.pack("<I", 0x40080000) + bytes([0xEE, 0, 0, 0]) + struct.pack("<H", chip_id)
    path.write_bytes(head + bytes(size - len(head)))
    return str(path)


def flash(args, env):
    return subprocess.run([sys.executable, FLASH] + args, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("make, chip, says", [
    (lambda p: str(p / "missing.bin"), "esp32s3",
     "not found (download the ESP32_GENERIC_S3 .bin from https://micropython.org/download/ESP32_GENERIC_S3/)"),
    (lambda p: str(p), "esp32", "is not a file"),
    (lambda p: image(p, size=1000), "esp32", "has 1000 bytes: not a MicroPython image"),
    (lambda p: image(p, magic=0x55), "esp32c3", "not an ESP firmware image (first byte 0x55, not 0xe9): download the ESP32_GENERIC_C3 .bin"),
    (lambda p: image(p, chip_id=9), "esp32", "is an image for esp32s3, not esp32: download ESP32_GENERIC (or pass --chip esp32s3)"),
])
def test_a_wrong_image_is_refused_before_the_board_is_erased(tmp_path, fake_esptool, make, chip, says):
    env, log = fake_esptool
    r = flash(["--port", "COM3", "--chip", chip, "--firmware", make(tmp_path)], env)
    assert r.returncode == 1 and says in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not log.exists()  # esptool never ran: nothing erased


@pytest.mark.parametrize("chip, chip_id, offset", [("esp32", 0, "0x1000"), ("esp32s3", 9, "0x0"), ("esp32c3", 5, "0x0")])
def test_a_good_image_is_erased_then_written_at_the_chips_offset(tmp_path, fake_esptool, chip, chip_id, offset):
    env, log = fake_esptool
    fw = image(tmp_path, chip_id=chip_id)
    r = flash(["--port", "COM3", "--chip", chip, "--firmware", fw], env)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].endswith("erase-flash") and "--chip %s" % chip in calls[0]
    assert calls[1].endswith("write-flash %s %s" % (offset, fw))


def test_the_board_names_are_micropythons():
    import flash as tool

    assert tool.BOARDS["esp32s3"] == "ESP32_GENERIC_S3" and tool.BOARDS["esp32c3"] == "ESP32_GENERIC_C3"
    source = open(FLASH).read()
    assert "ESP32S3_GENERIC" not in source and "ESP32C3_GENERIC" not in source


def test_the_demo_capture_names_no_path_of_another_machine():
    text = (REPO_ROOT / "tools" / "data" / "aidon_demo.hex").read_text()
    assert "/work/" not in text and "/home/" not in text and "Users\\" not in text
    assert "github.com/robinsmidsrod/ams-han-decoder" in text  # the attribution stays
