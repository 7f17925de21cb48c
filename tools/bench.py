"""make bench: decoder speed and memory, the loop's latency and heap, the whole product's heap.

A program, not a test: these machines are noisy, so every speed figure is a
ratio against a peer measured in the same run (amshan, the PyPI HAN decoder
behind a Home Assistant integration), and MicroPython memory figures are
counted by its own gc.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lib"))
sys.path.insert(0, ROOT)

from pc import capture  # noqa: E402
from hanport.decode import Decoder  # noqa: E402
from hanport.hdlc import Deframer  # noqa: E402

CORPUS = os.path.join(ROOT, "host_tests", "data", "corpus.hex")
CASES = [
    ("Aidon List 1", "aidon_6525_it_list1"),
    ("Aidon List 2", "aidon_6525_it_list2"),
    ("Aidon List 3", "aidon_6525_it_list3_a"),
    ("Kaifa List 3", "kaifa_ma304t4_list3_robin"),
    ("Kamstrup hourly", "kamstrup_3ph_hourly_xibriz"),
]
LIST3 = ("aidon_6525_it_list3_a", "kaifa_ma304t4_list3_robin", "kamstrup_3ph_hourly_xibriz")
TARGETS = {
    "list3_speedup": 20,  # List 3 at least 20 x faster than amshan
    "bytes_per_list3": 4096,
    "heap_after_import": 25 * 1024,
}


def load_frames():
    return dict(capture.read_hex(CORPUS))


def repetitions(run, seconds=0.1):
    """How many calls of run take about `seconds`: enough to swamp the timer."""
    run()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            run()
        if time.perf_counter() - start > seconds:
            return n
        n *= 2


def per_frame_us(runs, rounds=9):
    """Microseconds per call of each run, the best of interleaved rounds.

    The rounds alternate between the runs, so a burst of load on this noisy
    machine slows both sides of a ratio, not one.
    """
    counts = [repetitions(run) for run in runs]
    best = [None] * len(runs)
    for _ in range(rounds):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            for _ in range(counts[i]):
                run()
            elapsed = (time.perf_counter() - start) / counts[i]
            best[i] = elapsed if best[i] is None else min(best[i], elapsed)
    return [t * 1e6 for t in best]


def ours(frame):
    decoder = Decoder()
    out = []
    deframer = Deframer(lambda apdu, _frame: out.append(decoder.decode(apdu)))

    def run():
        del out[:]
        deframer.feed(frame)
        assert out[0] is not None

    return run


def amshans(frame):
    from han import autodecoder, hdlc

    decoder = autodecoder.AutoDecoder()

    def run():
        reader = hdlc.HdlcFrameReader(False)
        (hdlc_frame,) = reader.read(frame)
        assert hdlc_frame.is_good_ffc and hdlc_frame.is_expected_length
        assert decoder.decode_message_payload(hdlc_frame.payload)

    return run


def cpython_section(frames):
    print("CPython %s: deframe + HCS/FCS + decode, microseconds per frame (best of 9 interleaved rounds)" % sys.version.split()[0])
    print("  %-16s %10s %10s %9s" % ("frame", "hanport", "amshan", "speed-up"))
    ratios = {}
    for title, label in CASES:
        mine, theirs = per_frame_us([ours(frames[label]), amshans(frames[label])])
        ratios[label] = theirs / mine
        print("  %-16s %10.1f %10.1f %8.1fx" % (title, mine, theirs, theirs / mine))
    return ratios


def micropython_section():
    cmd = ["node", os.path.join(HERE, "mpy_run.mjs"), "--heap", "2m", "--file", CORPUS + ":/corpus.hex",
           os.path.join(HERE, "bench_mpy.py"), "/corpus.hex"] + [label for _, label in CASES]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        print(done.stdout + done.stderr)
        raise SystemExit("the MicroPython bench failed")
    figures = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        figures[" ".join(parts[:-1])] = parts[-1]
    titles = dict((label, title) for title, label in CASES)
    print("MicroPython 1.29 (WebAssembly build from npm, run by Node)")
    print("  %-16s %10s %12s" % ("frame", "us/frame", "bytes alloc"))
    for _, label in CASES:
        print("  %-16s %10s %12s" % (titles[label], figures["us_per_frame " + label], figures["bytes_per_frame " + label]))
    print("  (us/frame averages 200 frames; its clock ticks in ms. Allocation is counted by gc.mem_alloc() with gc disabled.)")
    for line in done.stdout.splitlines():
        if line.startswith("deframer") or line.startswith("heap") or line.startswith("stream"):
            print("  " + line)
    return figures


def main():
    frames = load_frames()
    ratios = cpython_section(frames)
    print()
    figures = micropython_section()
    print()
    checks = [
        ("every List 3 (Aidon, Kaifa, Kamstrup) at least %dx faster than amshan" % TARGETS["list3_speedup"],
         all(ratios[label] >= TARGETS["list3_speedup"] for label in LIST3)),
        ("deframer allocates nothing per byte fed",
         figures["deframer_bytes_per_byte_x1000"] == "0" and figures["deframer_bytes_for_4096_garbage_bytes"] == "0"),
        ("under %d bytes allocated per List 3 frame" % TARGETS["bytes_per_list3"],
         all(int(figures["bytes_per_frame " + label]) < TARGETS["bytes_per_list3"]
             for label in ("aidon_6525_it_list3_a", "kaifa_ma304t4_list3_robin", "kamstrup_3ph_hourly_xibriz"))),
        ("under %d bytes of heap after importing the decoder" % TARGETS["heap_after_import"],
         int(figures["heap_after_import"]) < TARGETS["heap_after_import"]),
    ]
    print("Targets")
    for text, ok in checks:
        print("  %-68s %s" % (text, "met" if ok else "MISSED"))
    loop_bench = os.path.join(HERE, "bench_loop.py")
    if os.path.exists(loop_bench):
        print()
        sys.stdout.flush()
        subprocess.run([sys.executable, loop_bench], cwd=ROOT, check=True)
    # The whole product's heap: by module group, a simulated day, the smallest heap.
    print()
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(HERE, "bench_heap.py")], cwd=ROOT, check=True)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
