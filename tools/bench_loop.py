"""Bench the main loop: delivery latency on the PC twin, heap under MicroPython.

    python tools/bench_loop.py [--frames 300] [--heap-frames 10000]

1. Latency: the PC twin (hanport.app.run and hanport.mqtt) publishing to a mosquitto on
   loopback; from the moment the last byte of a frame enters the byte source
   to its arrival at a subscriber. Median and 99th percentile (target p99 < 50 ms).
2. Heap: the same loop under the WebAssembly MicroPython with a fake client;
   gc.mem_alloc() after gc.collect() after 100 frames and after 10,000. It
   must not grow.

The heap_* functions are the MicroPython half, driven from heap().
"""
import sys

MPY = sys.implementation.name == "micropython"


# -- MicroPython half: heap --------------------------------------------------------
# The WebAssembly port only collects garbage at the top level (between calls
# from JavaScript: it cannot see roots in Wasm locals), so heap() runs this
# file through tools/mpy_run.mjs with MPY_STEPS: one top-level call per step,
# with a collection before each.

_bench = {}


def heap_setup(capture, total):
    from hanport.app import App
    from loop_fakes import (FakeBroker, FakeClock, FakeSystem, FrameSource, MemStorage,
                            NoWatchdog, UpLink, config, read_hex)

    frames = [f for f in read_hex(capture) if len(f) in (44, 269, 377)]  # the good ones
    clock = FakeClock(epoch=1700000000)
    src = FrameSource(clock, frames, period_ms=50, count=total)
    broker = FakeBroker(password="secret", keep=False)
    app = App(src, clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
              config(diag_interval_s=60), log=_quiet)
    _bench.update(src=src, broker=broker, app=app)


def heap_run(frames):
    """Step the loop until `frames` frames were read and everything is published."""
    src, app = _bench["src"], _bench["app"]
    frames = min(frames, src.count)
    while src.sent < frames or src.pos or len(app.outbox) or app.session.client is None:
        app.step()


def heap_mark():
    import gc

    src, app, broker = _bench["src"], _bench["app"], _bench["broker"]
    print("after {} frames: {} bytes in use (readings {}, published {}, errors {})".format(
        src.sent, gc.mem_alloc(), app.readings, broker.count, app.errors["internal"]))


def _quiet(s):
    pass


# -- CPython half: latency, then the MicroPython run -------------------------------

def latency(frames_n):
    import os
    import statistics
    import tempfile
    import threading
    import time

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(here))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "host_tests"))
    from pc import parts as pc_parts  # noqa: E402
    from brokers import Mosquitto, Subscriber, available
    from hanport.app import run

    if not available():
        print("latency: skipped, mosquitto is not installed")
        return None
    caps = [f for label, f in pc_parts.read_capture(os.path.join(here, "data", "aidon_demo.hex"))
            if pc_parts.list_of(f)]
    entered = []  # monotonic time the last byte of frame i entered the source

    class Timed:
        """Frame i enters whole at start + i * gap; records when."""

        def __init__(self, gap_s):
            self.gap = gap_s
            self.t = time.monotonic() + 1.0
            self.i = 0

        def readinto(self, buf):
            if self.i >= frames_n or time.monotonic() < self.t:
                return None
            f = caps[self.i % len(caps)]
            buf[:len(f)] = f
            entered.append(self.t)  # its bytes are readable from then on
            self.i += 1
            self.t += self.gap
            return len(f)

    with tempfile.TemporaryDirectory() as d:
        b = Mosquitto(d, {"han": "bench-pw"})
        b.start()
        try:
            sub = Subscriber(b.port, "han", "bench-pw", "han/bench/#")
            cfg = pc_parts.make_config("127.0.0.1", b.port, name="bench", user="han", password="bench-pw")
            src = Timed(0.04)
            done = threading.Event()
            t = threading.Thread(target=run, args=(src, pc_parts.PcClock(), pc_parts.PcLink(),
                                                   pc_parts.mqtt_factory(), pc_parts.PcStorage(None),
                                                   pc_parts.PcWatchdog(), pc_parts.PcSystem(), cfg),
                                 kwargs={"stop": lambda a: done.is_set(), "log": lambda s: None})
            t.start()
            deadline = time.monotonic() + frames_n * 0.04 + 15
            while time.monotonic() < deadline and len(sub.on("")) < frames_n + 2:
                got = [m for m in sub.messages if "/list" in m[1]]
                if len(got) >= frames_n:
                    break
                time.sleep(0.1)
            done.set()
            t.join(10)
            sub.close()
        finally:
            b.stop()
    got = [m[0] for m in sub.messages if "/list" in m[1]]
    if len(got) != frames_n:
        print("latency: {} of {} frames arrived".format(len(got), frames_n))
    lat = sorted((a - e) * 1000 for a, e in zip(got, entered))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    med = statistics.median(lat)
    print("latency, last byte into the source -> subscriber (PC twin, mosquitto on loopback, "
          "{} frames): median {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms ({})".format(
              len(lat), med, p99, lat[-1], "target p99 < 50 ms: ok" if p99 < 50 else "ABOVE the 50 ms target"))
    return p99


MARKS = (100, 1000, 2500, 5000, 7500)  # and the total
LOOKS = 5  # heap readings per checkpoint ...
LOOK_GAP = 20  # ... this many frames apart


def heap(frames_n):
    """Run the heap half under MicroPython; print the figures, return the growth in bytes."""
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = ["node", os.path.join(root, "tools", "mpy_run.mjs"), "--heap", "1m",
           os.path.join(root, "tools", "bench_loop.py"), "--heap-steps", str(int(frames_n))]
    try:
        r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("heap: could not run MicroPython: {}".format(e))
        return None
    print("heap in use after a collection (WebAssembly MicroPython, fake client; the lowest of")
    print("{} looks {} frames apart: the collector is conservative, so a byte in a buffer that".format(LOOKS, LOOK_GAP))
    print("looks like a pointer can keep garbage alive for a while; a leak would raise every look):")
    if r.returncode:
        print(r.stdout + r.stderr)
        return None
    marks = _lowest(_marks(r.stdout))
    for n, used in marks:
        print("  after {} frames: {} bytes in use".format(n, used))
    growth = marks[-1][1] - marks[0][1]
    print("  heap growth from {} to {} frames: {} bytes ({:.2f} bytes per frame; one object kept "
          "per frame would be 16 or more)".format(marks[0][0], marks[-1][0], growth,
                                                  growth / float(marks[-1][0] - marks[0][0])))
    half = [m for m in marks if m[0] >= frames_n // 2]
    print("  second half ({} to {} frames): {:+d} bytes".format(half[0][0], half[-1][0], half[-1][1] - half[0][1]))
    return growth


def _marks(out):
    """[(frames, bytes in use)] from heap_mark's lines."""
    marks = []
    for line in out.splitlines():
        words = line.split()
        marks.append((int(words[1]), int(words[3])))
    return marks


def _lowest(marks):
    """[(checkpoint, lowest bytes in use)]: looks at a checkpoint are LOOK_GAP frames apart."""
    out = []
    for n, used in marks:
        if out and n - out[-1][0] < LOOK_GAP * LOOKS:
            out[-1] = (out[-1][0], min(out[-1][1], used))
        else:
            out.append((n, used))
    return out


def _steps(total):
    """MPY_STEPS for tools/mpy_run.mjs: it collects garbage before each step."""
    steps = [lambda: heap_setup("/tools/data/aidon_demo.hex", total + LOOKS * LOOK_GAP)]
    for n in [m for m in MARKS if m < total] + [total]:
        for k in range(LOOKS):
            steps.append(_runner(n + k * LOOK_GAP))
            steps.append(heap_mark)
    return steps


def _runner(n):
    return lambda: heap_run(n)


def main():
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300, help="frames for the latency run")
    p.add_argument("--heap-frames", type=int, default=10000, help="frames for the heap run")
    a = p.parse_args()
    latency(a.frames)
    heap(a.heap_frames)
    return 0


if MPY and "--heap-steps" in sys.argv:
    MPY_STEPS = _steps(int(sys.argv[sys.argv.index("--heap-steps") + 1]))
elif __name__ == "__main__" and not MPY:
    sys.exit(main())
