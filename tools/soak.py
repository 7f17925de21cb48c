"""make soak: a simulated day through the whole product, with the heap capped.

    python tools/soak.py [--heap-kb N] [--slots N]

The same day as the heap budget (host_tests/heapday.py): the product started
as main.py starts it on the ESP32, the code as tools/deploy.py installs it (its
ROMFS image; --install lib: the .mpy files in /lib, the fallback), the
WebAssembly MicroPython (32-bit, like the ESP32), an Aidon push every 2.5 s
with List 3 on the hour, the broker away 08:00-16:00, a fake MQTT client.
The product gets --heap-kb of heap (default: the budget, 72) on top of what
the harness itself holds. It passes when the day runs without running out of
heap, the heap in use after a collection is flat (no hour ends more than
FLAT_KB above the first hour outside the outage), and every frame is
accounted for: decoded, and delivered or counted (coalesced or dropped).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_heap  # noqa: E402

FLAT_KB = 4  # the collector is conservative: a stale pointer keeps a few KB now and then


def main(argv=None):
    ap = argparse.ArgumentParser(description="A simulated day through the product, heap capped.")
    ap.add_argument("--heap-kb", type=int, default=bench_heap.BUDGET // 1024,
                    help="heap for the product in KB (default: the budget, %d)" % (bench_heap.BUDGET // 1024))
    ap.add_argument("--slots", type=int, default=bench_heap.SLOTS, help="pushes (default: a day)")
    ap.add_argument("--install", choices=("romfs", "lib"), default="romfs",
                    help="the code in the ROMFS image (default) or as .mpy files in /lib")
    a = ap.parse_args(argv)
    lib = bench_heap.build(romfs=a.install == "romfs")
    harness = bench_heap.harness_bytes(lib)
    heap = a.heap_kb * 1024 + harness
    print("soak: %d pushes, %d KB of heap for the product (+ %.1f KB harness), the code as %s, "
          "WebAssembly MicroPython" % (a.slots, a.heap_kb, harness / 1024.0, lib))
    clean, f, text = bench_heap.day(lib, heap, a.slots)
    if "slots" not in f:
        print(text)
        return 1
    hourly = [int(n) - harness for n in f.get("hourly_in_use", "").split()]
    l1, l2, l3 = (int(x) for x in f["produced"].split())
    d1, d2, d3 = (int(x) for x in f["delivered"].split())
    produced = l1 + l2 + l3
    print("  frames produced %d (List 1 %d, List 2 %d, List 3 %d); decoded %s" % (produced, l1, l2, l3, f["decoded"]))
    print("  delivered: List 1 %d, List 2 %d, List 3 %d; coalesced or dropped %s; still queued %s; "
          "connects %s; internal errors %s" % (d1, d2, d3, f["dropped"], f["queued"], f["connects"],
                                                f["internal_errors"]))
    if hourly:
        print("  heap in use after a collection, each hour (KB, product only):")
        print("    " + " ".join(["%.1f" % (n / 1024.0) for n in hourly]))
    print("  most in use %s, peak %s (harness included)" % (f.get("in_use_max"), f.get("peak")))
    problems = []
    if not clean:
        problems.append("ran out of heap (%s)" % f.get("out_of_heap_at", "?"))
    if int(f["decoded"]) != produced:
        problems.append("decoded %s of %d frames" % (f["decoded"], produced))
    if d3 != l3:
        problems.append("List 3 delivered %d of %d" % (d3, l3))
    # Readings and raw frames that did not go out must be counted: coalesced while
    # the broker was away (a newer one went instead), dropped, or still queued.
    missing = (produced - d1 - d2 - d3) + (produced - int(f["raw_delivered"]))
    if missing != int(f["dropped"]) + int(f["queued"]):
        problems.append("frames not accounted for")
    outside = [n for i, n in enumerate(hourly) if not 8 <= i < 16 and i > 0]
    if outside and max(outside) - outside[0] > FLAT_KB * 1024:
        problems.append("heap not flat: +%.1f KB" % ((max(outside) - outside[0]) / 1024.0))
    if problems:
        print("soak: FAILED: " + "; ".join(problems))
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
