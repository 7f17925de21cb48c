#!/usr/bin/env python3
"""Put MicroPython on the ESP32: erase the flash, then write the firmware image.

    python3 tools/flash.py --port /dev/ttyUSB0 --firmware ESP32_GENERIC-20xx-v1.29.x.bin

Uses esptool 5 (hyphenated commands). Every failure ends in one line on
stderr and exit status 1, never a traceback. The helpers here are shared
with tools/deploy.py.
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

# Where the image starts: after the second-stage bootloader on the classic
# ESP32 and the S2; at 0 on the newer chips, whose images include it.
OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0}
BAUD = 460800
TIMEOUT_S = 300  # a whole write at 460800 baud takes well under a minute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def main(argv=None):
    ap = argparse.ArgumentParser(description="Erase the ESP32 and write a MicroPython image.")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    ap.add_argument("--firmware", required=True, help="MicroPython .bin, e.g. ESP32_GENERIC-...-v1.29.x.bin")
    ap.add_argument("--chip", default="esp32", choices=sorted(OFFSETS))
    ap.add_argument("--baud", type=int, default=BAUD)
    ap.add_argument("-v", "--verbose", action="store_true", help="show esptool's output")
    args = ap.parse_args(argv)
    try:
        if not os.path.isfile(args.firmware):
            raise Failure("firmware file %s not found (download the %s .bin from micropython.org)"
                          % (args.firmware, args.chip.upper() + "_GENERIC"))
        check_port(args.port)
        esptool = find_tool("esptool", "esptool", "esptool==5.6.0")
        base = esptool + ["--chip", args.chip, "--port", args.port]
        print("flash: erasing %s on %s ..." % (args.chip, args.port))
        run(base + ["erase-flash"], TIMEOUT_S, "erase", args.verbose)
        offset = OFFSETS[args.chip]
        print("flash: writing %s at 0x%x ..." % (os.path.basename(args.firmware), offset))
        run(base + ["--baud", str(args.baud), "write-flash", "0x%x" % offset, args.firmware],
            TIMEOUT_S, "write", args.verbose)
    except Failure as e:
        if "Failed to connect" in str(e) or "No serial data" in str(e):
            e = Failure("no ESP32 answered on %s: hold BOOT, tap EN, release BOOT, retry (%s)"
                        % (args.port, e))
        print("flash: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("flash: interrupted", file=sys.stderr)
        return 1
    print("flash: done. Next: python3 tools/deploy.py --port %s --config config.json" % args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
