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


# The partition table of MicroPython's ESP32_GENERIC 4 MiB images (partitions-4MiB.csv).
STOCK = [(1, 2, 0x9000, 0x6000, b"nvs"), (1, 1, 0xF000, 0x1000, b"phy_init"),
         (0, 0, 0x10000, 0x1F0000, b"factory"), (1, 0x81, 0x200000, 0x200000, b"vfs")]


def firmware_with_table(tmp_path, entries, romfs_support=True, name="fw.bin"):
    """An esp32 image (written at 0x1000) with a partition table at flash 0x8000."""
    import flash as tool

    path = image(tmp_path, size=300 * 1024, name=name)
    data = bytearray(open(path, "rb").read())
    table = tool.write_table([[k, st, o, n, lab, 0] for k, st, o, n, lab in entries])
    at = tool.TABLE_AT - 0x1000
    data[at:at + len(table)] = table
    if romfs_support:
        data[0x20000:0x20009] = b"rom_ioctl"  # the qstr a ROMFS-capable firmware holds
    open(path, "wb").write(bytes(data))
    return path


def written_table(calls):
    import flash as tool

    written = calls[1].split()[-1]
    data = open(written, "rb").read()
    return written, data[tool.TABLE_AT - 0x1000:][:tool.TABLE_BYTES]


def test_a_romfs_firmware_gets_a_romfs_partition_cut_from_the_end_of_vfs(tmp_path, fake_esptool):
    import hashlib

    import flash as tool

    env, log = fake_esptool
    fw = firmware_with_table(tmp_path, STOCK)
    r = flash(["--port", "COM3", "--firmware", fw], env)
    assert r.returncode == 0, r.stderr
    assert "partition table: adds a 128 KB romfs partition at 0x3e0000" in r.stdout
    written, table = written_table(log.read_text().splitlines())
    assert written != fw and open(fw, "rb").read() != open(written, "rb").read()  # the user's file untouched
    entries = tool.read_table(table)
    assert [e[4] for e in entries] == [b"nvs", b"phy_init", b"factory", b"vfs", b"romfs"]
    vfs, romfs = entries[3], entries[4]
    assert vfs[2:4] == [0x200000, 0x1E0000] and romfs[:4] == [1, 0x8F, 0x3E0000, 0x20000]
    # The MD5 entry the bootloader checks, over the entries before it.
    n = 32 * len(entries)
    assert table[n:n + 2] == b"\xeb\xeb" and table[n + 16:n + 32] == hashlib.md5(table[:n]).digest()
    assert table[n + 32:] == b"\xff" * (len(table) - n - 32)
    # Everything but the table is the image as downloaded.
    a, b = open(fw, "rb").read(), open(written, "rb").read()
    assert len(a) == len(b) and a[:0x7000] == b[:0x7000] and a[0x7000 + len(table):] == b[0x7000 + len(table):]


@pytest.mark.parametrize("entries, support, says", [
    (STOCK, False, "this firmware has no ROMFS support: the app's code will load into RAM"),
    (STOCK[:3] + [(1, 0x81, 0x200000, 0x80000, b"vfs")], True, "the vfs partition is too small to share"),
    (STOCK + [(1, 0x8F, 0x3F0000, 0x10000, b"romfs")], True, "keeps the image's own romfs partition"),
])
def test_other_images_are_written_as_downloaded(tmp_path, fake_esptool, entries, support, says):
    env, log = fake_esptool
    fw = firmware_with_table(tmp_path, entries, support)
    r = flash(["--port", "COM3", "--firmware", fw], env)
    assert r.returncode == 0 and says in r.stdout, r.stdout + r.stderr
    assert written_table(log.read_text().splitlines())[0] == fw
