"""The heap the whole product needs, measured as the device would use it (issue 9).

    python tools/bench_heap.py [--slots N] [--no-bisect] [--install romfs|lib]

Under the WebAssembly MicroPython (32-bit, like the ESP32) with the code
tools/deploy.py builds (into build/heap/): its ROMFS image, mapped outside the
Python heap as the ESP32 maps its romfs flash partition (or, with --install lib,
the .mpy files in /lib, deploy's fallback). host_tests/heapday.py starts the
product as main.py does and runs a simulated day (Aidon pushes every 2.5 s,
List 3 hourly, the broker away 08:00-16:00). Prints:
1. the heap in use after start-up, by module group;
2. the most in use during the day (after a collection) and the peak (what a
   push allocated on top, before the next collection);
3. the smallest heap with which the day runs without running out (bisection
   over the runner's --heap; see heapday.py for how running out is detected).

Every heap figure given to or read from the runner includes the harness (the
driver, the stand-ins, the frames): it is printed, and the product's share is
the figure minus it. The functions here are also what host_tests/test_heap_budget.py
uses.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build", "heap")
DRIVER = os.path.join(ROOT, "host_tests", "heapday.py")
BUDGET = 72 * 1024  # issue 9: the whole product within 72 KB of Python heap
AIM = 64 * 1024
SLOTS = 34560  # a day of 2.5 s pushes
ROOMY = 192 * 1024  # a heap the day never fills (a bigger one only makes collections slower)


class Install:
    """Where the runner finds the product's code, as tools/deploy.py installs it:
    in the ROMFS image (the flash partition "romfs", bytecode run in place), or,
    on a firmware without ROMFS, as .mpy files in /lib (bytecode copied into the heap)."""

    def __init__(self, out_dir, image, romfs):
        self.romfs = romfs
        self.list3 = os.path.join(out_dir, "list3.bin")
        if romfs:
            empty = os.path.join(out_dir, "nolib")
            os.makedirs(empty, exist_ok=True)  # /lib holds nothing: every import comes from /rom
            self.args = ["--romfs", image, "--mpy", empty]
        else:
            self.args = ["--mpy", os.path.join(out_dir, "lib")]

    def __str__(self):
        return "ROMFS image" if self.romfs else ".mpy files in /lib"


def build(out_dir=BUILD, romfs=True):
    """Compile lib/ and firmware/ as tools/deploy.py does (the .mpy files and the
    ROMFS image); returns the Install the runner mounts."""
    sys.path.insert(0, HERE)
    import deploy

    deploy.build(out_dir)
    sys.path[:0] = [ROOT, os.path.join(ROOT, "host_tests")]  # pc/ and the day's helpers
    import heapday_kit

    heapday_kit.build_list3(os.path.join(out_dir, "list3.bin"))
    return Install(out_dir, os.path.join(out_dir, deploy.ROMFS_IMAGE), romfs)


def run(lib, args, heap, timeout=900):
    """Run heapday.py under MicroPython with the code of `lib` (an Install);
    (exit status, {name: value text}, groups, output)."""
    node = os.environ.get("NODE") or "node"
    cmd = [node, os.path.join(HERE, "mpy_run.mjs"), "--heap", str(heap)] + lib.args + [
           "--file", lib.list3 + ":/heapday/list3.bin", DRIVER] + list(args)
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    figures, groups = {}, []
    for line in p.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "group":
            size, _, title = value.partition(" ")
            groups.append((int(size), title))
        elif name and not name.endswith(":"):
            figures[name] = value
    return p.returncode, figures, groups, p.stdout + p.stderr


def harness_bytes(lib):
    """Heap held by the driver itself (stand-ins, frames, its own code)."""
    rc, f, _, text = run(lib, ["day", "0", str(ROOMY)], ROOMY, 120)
    if rc or "harness_bytes" not in f:
        raise SystemExit("heapday.py failed to start:\n" + text)
    return int(f["harness_bytes"])


def day(lib, heap, slots=SLOTS):
    """Run the day with `heap` bytes; (clean, figures, output)."""
    rc, f, _, text = run(lib, ["day", str(slots), str(heap)], heap)
    return rc == 0 and f.get("clean") == "1", f, text


def smallest_heap(lib, lo, hi, slots=SLOTS, step=1024, say=print):
    """Bisection: the smallest heap (a multiple of step) with which the day runs clean."""
    while not day(lib, hi, slots)[0]:
        say("  %d KB: ran out" % (hi // 1024))
        lo, hi = hi, hi * 2
    say("  %d KB: clean" % (hi // 1024))
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        ok = day(lib, mid, slots)[0]
        say("  %d KB: %s" % (mid // 1024, "clean" if ok else "ran out"))
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def kb(n):
    return "%.1f KB" % (n / 1024.0)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=SLOTS, help="pushes to simulate (default: a day)")
    ap.add_argument("--no-bisect", action="store_true", help="skip the search for the smallest heap")
    ap.add_argument("--install", choices=("romfs", "lib"), default="romfs",
                    help="the code in the ROMFS image as tools/deploy.py installs it (default), or as "
                         ".mpy files in /lib, its fallback on a firmware without ROMFS")
    a = ap.parse_args(argv)
    lib = build(romfs=a.install == "romfs")
    print("Heap (WebAssembly MicroPython 1.29, 32-bit; tools/deploy.py's build, the code as %s; gc.mem_alloc())" % lib)
    rc, f, groups, text = run(lib, ["groups"], ROOMY, 120)
    if rc:
        print(text)
        return 1
    print("  after start-up (firmware.device.main with stand-ins), by module group:")
    for size, title in groups:
        print("    %9s  %s" % (kb(size), title))
    print("    %9s  in total (every layout loaded; the device loads only its meter's)" % kb(int(f["startup_bytes"])))
    ok, f, text = day(lib, ROOMY, a.slots)
    if not ok:
        print(text)
        return 1
    harness = int(f["harness_bytes"])
    print("    %9s  in total in the day's run after start-up (its meter's layout only), harness not counted (%s)"
          % (kb(int(f["startup_bytes"])), kb(harness)))
    used = int(f["in_use_max"].split()[0])
    peak = int(f["peak"].split()[0])
    print("  simulated day (%s pushes; List 1/2/3, raw frames, broker away 08:00-16:00):" % f["slots"])
    print("    %9s  most in use after a collection (%s), product only" % (kb(used - harness), f["in_use_max"].split()[-1]))
    print("    %9s  peak before a collection (%s), product only" % (kb(peak - harness), f["peak"].split()[-1]))
    print("    frames produced (List 1, 2, 3) %s; decoded %s; delivered %s; raw %s; dropped %s"
          % (f["produced"], f["decoded"], f["delivered"], f["raw_delivered"], f["dropped"]))
    if a.no_bisect:
        return 0
    print("  smallest heap for the day without running out (bisection, 1 KB steps; harness %s included):" % kb(harness))
    least = smallest_heap(lib, used, (peak + 8 * 1024) // 1024 * 1024, a.slots, say=lambda s: print("  " + s))
    print("    %9s  needed: %s for the product, %s for the harness" % (kb(least), kb(least - harness), kb(harness)))
    print("    budget %s for the product%s: %s; aim %s: %s" % (
        kb(BUDGET), "" if a.slots == SLOTS else " (over %d pushes only)" % a.slots, "met" if least - harness <= BUDGET else "MISSED by " + kb(least - harness - BUDGET),
        kb(AIM), "met" if least - harness <= AIM else "missed by " + kb(least - harness - AIM)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
