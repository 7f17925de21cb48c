#!/usr/bin/env python3
"""Put MicroPython on the ESP32: erase the flash, then write the firmware image.

    python3 tools/flash.py --port /dev/ttyUSB0 --firmware ESP32_GENERIC-20xx-v1.29.x.bin

When the firmware can mount a ROMFS (built with MICROPY_VFS_ROM, as its
`vfs.rom_ioctl` shows), the image's partition table gets a 128 KB data
partition "romfs", taken from the end of the filesystem partition "vfs":
tools/deploy.py puts the app's bytecode there, where MicroPython runs it in
place instead of copying it into the Python heap (README, "Memory").

Uses esptool 5 (hyphenated commands). Every failure ends in one line on
stderr and exit status 1, never a traceback. The helpers here are shared
with tools/deploy.py.
"""
import argparse
import hashlib
import importlib.util
import os
import shutil
import struct
import subprocess
import sys

# Where the image starts: after the second-stage bootloader on the classic
# ESP32 and the S2; at 0 on the newer chips, whose images include it.
OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0}
# MicroPython's board names for the download page (micropython.org/download/<BOARD>).
BOARDS = {"esp32": "ESP32_GENERIC", "esp32s2": "ESP32_GENERIC_S2", "esp32s3": "ESP32_GENERIC_S3",
          "esp32c3": "ESP32_GENERIC_C3", "esp32c6": "ESP32_GENERIC_C6"}
# The chip id in an ESP image's extended header (bytes 12-13, little endian),
# as esptool's bin_image.py and ESP-IDF's esp_app_format.h define them.
CHIP_IDS = {0: "esp32", 2: "esp32s2", 9: "esp32s3", 5: "esp32c3", 13: "esp32c6"}
IMAGE_MAGIC = 0xE9  # first byte of every ESP image (bootloader and app)
MIN_IMAGE = 64 * 1024  # a MicroPython image is 1.5-2 MB; anything this small is not one
MAX_IMAGE = 16 * 1024 * 1024  # the largest flash these chips take
# The partition table: at 0x8000 in flash, 32-byte entries, then an MD5 entry
# (ESP-IDF's esp_flash_partitions.h and gen_esp32part.py define the format).
TABLE_AT = 0x8000
TABLE_BYTES = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")  # magic, type, subtype, offset, size, label, flags
ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"
DATA = 1
ROMFS_LABEL = b"romfs"  # the label MicroPython's esp32 port looks for
ROMFS_SUBTYPE = 0x8F  # MicroPython's own partitions-*-romfs.csv use this
ROMFS_BYTES = 128 * 1024  # the app's image is about 60 KB
MIN_VFS_LEFT = 512 * 1024  # the flash queue alone may take 384 KB
ROMFS_SUPPORT = b"rom_ioctl"  # a firmware that can mount a ROMFS names this function
BAUD = 460800
TIMEOUT_S = 300  # a whole write at 460800 baud takes well under a minute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from pc.capture import shown as one_line  # noqa: E402  (escapes what would break the line)


class Failure(Exception):
    """A one-line reason to stop."""


def find_tool(exe, module, pip_name):
    """The command that runs a Python-packaged tool: on PATH, beside this
    Python (a venv's bin/), in the repo's .venv, or as `python -m module`."""
    for d in (None, os.path.dirname(sys.executable), os.path.join(REPO, ".venv", "bin")):
        path = shutil.which(exe, path=d)
        if path:
            return [path]
    if importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    raise Failure("%s is not installed: run `make setup`, or pip install %s" % (exe, pip_name))


def check_port(port):
    # Windows names (COM3) cannot be checked here: the tool will say.
    if port.startswith("/dev/") and not os.path.exists(port):
        raise Failure("serial port %s does not exist: is the board plugged in? "
                      "(mpremote devs lists the ports)" % port)


def run(cmd, timeout_s, what, verbose=False):
    """Run cmd; on failure raise Failure naming `what` and the tool's own reason."""
    try:
        p = subprocess.run(cmd, stdout=None if verbose else subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout_s,
                           universal_newlines=True)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no answer within %d s" % (what, timeout_s))
    except OSError as e:
        raise Failure("%s: cannot start %s (%s)" % (what, cmd[0], e.strerror))
    if p.returncode != 0:
        raise Failure("%s failed: %s" % (what, reason(p.stdout or "")))
    return p.stdout or ""


def reason(output):
    """The line of a tool's output that says what went wrong."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        if "A fatal error occurred:" in ln:
            return ln.split("A fatal error occurred:", 1)[1].strip()
    for ln in reversed(lines):
        if "rror" in ln or ln.startswith("mpremote:"):
            return ln
    return lines[-1] if lines else "(no output; run with -v)"


def check_image(path, chip):
    """Refuse a file that is not a firmware image for this chip, before the board is erased."""
    board = BOARDS[chip]
    if not os.path.exists(path):
        raise Failure("firmware file %s not found (download the %s .bin from "
                      "https://micropython.org/download/%s/)" % (path, board, board))
    if not os.path.isfile(path):
        raise Failure("firmware %s is not a file" % path)
    size = os.path.getsize(path)
    if not MIN_IMAGE <= size <= MAX_IMAGE - OFFSETS[chip]:
        raise Failure("firmware %s has %d bytes: not a MicroPython image (they are 1-2 MB); "
                      "download the %s .bin" % (path, size, board))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise Failure("cannot read firmware %s: %s" % (path, e.strerror or e))
    if head[0] != IMAGE_MAGIC:
        raise Failure("%s is not an ESP firmware image (first byte 0x%02x, not 0xe9): download the "
                      "%s .bin, not a .uf2, .elf or .zip" % (path, head[0], board))
    made_for = CHIP_IDS.get(head[12] | (head[13] << 8))
    if made_for is not None and made_for != chip:
        raise Failure("%s is an image for %s, not %s: download %s (or pass --chip %s)"
                      % (path, made_for, chip, board, made_for))


def read_table(table):
    """The partition entries of a table's bytes: [[type, subtype, offset, size, label, flags]]."""
    entries = []
    for at in range(0, len(table) - ENTRY.size + 1, ENTRY.size):
        magic, kind, subtype, offset, size, label, flags = ENTRY.unpack_from(table, at)
        if magic != ENTRY_MAGIC:
            break  # the MD5 entry, or the erased rest
        entries.append([kind, subtype, offset, size, label.rstrip(b"\0"), flags])
    return entries


def write_table(entries, length=TABLE_BYTES):
    """A table's bytes: the entries, their MD5 entry, then erased flash (0xff)."""
    out = b"".join(ENTRY.pack(ENTRY_MAGIC, k, st, o, n, lab, fl) for k, st, o, n, lab, fl in entries)
    out += MD5_MAGIC + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (length - len(out))


def with_romfs(table):
    """The table with a ROMFS partition cut from the end of "vfs"; (table, what was done)."""
    entries = read_table(table)
    labels = [e[4] for e in entries]
    if ROMFS_LABEL in labels:
        return table, "keeps the image's own romfs partition"
    if b"vfs" not in labels:
        return table, "no vfs partition in the image's table: the app's code will load into RAM"
    vfs = entries[labels.index(b"vfs")]
    if vfs[0] != DATA or vfs[3] < ROMFS_BYTES + MIN_VFS_LEFT:
        return table, "the vfs partition is too small to share: the app's code will load into RAM"
    vfs[3] -= ROMFS_BYTES
    entries.append([DATA, ROMFS_SUBTYPE, vfs[2] + vfs[3], ROMFS_BYTES, ROMFS_LABEL, 0])
    return write_table(entries, len(table)), "adds a %d KB romfs partition at 0x%x" % (
        ROMFS_BYTES // 1024, vfs[2] + vfs[3])


def prepare_image(path, chip, out_dir):
    """The image to write: the file itself, or a copy whose table has a romfs partition."""
    with open(path, "rb") as f:
        data = f.read()
    if ROMFS_SUPPORT not in data:
        return path, "this firmware has no ROMFS support: the app's code will load into RAM"
    at = TABLE_AT - OFFSETS[chip]
    table = data[at:at + TABLE_BYTES]
    if at < 0 or not table.startswith(ENTRY_MAGIC):
        return path, "no partition table at 0x%x in the image: written as it is" % TABLE_AT
    new, what = with_romfs(table)
    if new == table:
        return path, what
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, os.path.basename(path))
    with open(out, "wb") as f:
        f.write(data[:at] + new + data[at + len(new):])
    return out, what


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line on stderr and exit status 2."""

    def error(self, message):
        sys.stderr.write("%s: %s (--help lists the options)\n" % (self.prog, one_line(message)))
        sys.exit(2)


def main(argv=None):
    ap = Parser(prog="flash", description="Erase the ESP32 and write a MicroPython image. The app is "
                "tested on the classic ESP32 (ESP32_GENERIC); --chip esp32s3/esp32c3 write their "
                "images (ESP32_GENERIC_S3/_C3) at the right offset.")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    ap.add_argument("--firmware", required=True, help="MicroPython .bin, e.g. ESP32_GENERIC-...-v1.29.x.bin")
    ap.add_argument("--chip", default="esp32", choices=sorted(OFFSETS))
    ap.add_argument("--baud", type=int, default=BAUD)
    ap.add_argument("-v", "--verbose", action="store_true", help="show esptool's output")
    args = ap.parse_args(argv)
    try:
        check_image(args.firmware, args.chip)  # before anything touches the board
        check_port(args.port)
        firmware, what = prepare_image(args.firmware, args.chip, os.path.join(REPO, "build", "flash"))
        print("flash: partition table: %s" % what)
        esptool = find_tool("esptool", "esptool", "esptool==5.6.0")
        base = esptool + ["--chip", args.chip, "--port", args.port]
        print("flash: erasing %s on %s ..." % (args.chip, args.port))
        run(base + ["erase-flash"], TIMEOUT_S, "erase", args.verbose)
        offset = OFFSETS[args.chip]
        print("flash: writing %s at 0x%x ..." % (os.path.basename(args.firmware), offset))
        run(base + ["--baud", str(args.baud), "write-flash", "0x%x" % offset, firmware],
            TIMEOUT_S, "write", args.verbose)
    except Failure as e:
        if "Failed to connect" in str(e) or "No serial data" in str(e):
            e = Failure("no ESP32 answered on %s: hold BOOT, tap EN, release BOOT, retry (%s)"
                        % (args.port, e))
        print("flash: %s" % one_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("flash: interrupted", file=sys.stderr)
        return 1
    print("flash: done. Next: python3 tools/deploy.py --port %s --config config.json" % args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
