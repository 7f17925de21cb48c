"""A simulated day of the whole product, for the heap budget (issue 9).

    node tools/mpy_run.mjs --heap 90k --mpy build/heap/lib host_tests/heapday.py day SLOTS 90k
    node tools/mpy_run.mjs --heap 1m --mpy build/heap/lib host_tests/heapday.py groups

(tools/deploy.py's build("build/heap") makes build/heap/lib: the .mpy files the
device gets.) Starts the product as main.py does on the ESP32
(firmware.device.main: config file, safe boot, flash storage, the UART source
with its ring, Wi-Fi, the watchdog) over stand-ins for `machine`, `network`,
`esp32`, `ntptime` and `umqtt.simple`, with simulated time and a fake MQTT
client (heapday_kit.py). The only seam: hanport.app.run is replaced by one
that builds the App with the same arguments (the fake client as its factory)
and hands it back, so that each meter push can be a top-level step of its own
(the WebAssembly port collects garbage only between top-level calls).

The meter is an Aidon: a push every 2.5 s, List 2 every 4th, List 3 on the
hour (built with framebuild.py, clock and registers advancing), the other
frames real ones from host_tests/data. The broker is away 08:00-16:00.

The heap cap: this port never fails an allocation for want of heap; it adds
a heap area instead (and collects only at the top level). So a push that
needed more than the heap given (in use at its start plus what it allocated,
in the holes fragmentation left) shows as a heap that grew: checked after
every iteration of the loop (each is a top-level step, with a collection
before it), it counts as running out of memory. That is a little stricter
than the device, which can also collect in the middle of an iteration. A
heap can also run out with kilobytes free: fragmentation leaves no hole big
enough for one payload.

Prints "name value" lines (host_tests/test_heap_budget.py and tools/bench_heap.py
read them). This file stays small: it is in the heap all day, so it is the
harness's share of the figures (printed as harness_bytes).
"""
import gc
import sys

MPY = sys.implementation.name == "micropython"
SLOTS = 34560  # 24 h of 2.5 s pushes
HOUR = 1440  # pushes an hour
OUTAGE = (8 * HOUR, 16 * HOUR)  # the broker is away 08:00-16:00
STEPS_PER_SLOT = 4  # loop iterations per push, each a top-level step
BOOT_PHASES = 12  # steps for start-up's phases (firmware.device has fewer)
S = {"slot": 0, "peak": 0, "peak_slot": 0, "live": 0, "live_slot": 0, "grew": None, "hourly": []}


def setup():
    import heapday_kit

    heapday_kit.setup(S)
    del sys.modules["heapday_kit"]


def harness():
    S["harness"] = gc.mem_alloc()  # this script, the stand-ins, the frames
    print("harness_bytes", S["harness"])
    # gc.mem_free() here counts the room the heap may still grow by (SPLIT_RESERVE):
    # the total goes past heap + reserve only when a heap area was added.
    S["total"] = S.get("heap", 0) + 128 * 1024 * 1024
    if MPY and gc.mem_alloc() + gc.mem_free() > S["total"]:
        print("harness_did_not_fit", S["heap"])
        raise SystemExit(4)


def boot():
    import heapday_kit

    heapday_kit.boot(S)
    del sys.modules["heapday_kit"]  # its set-up code leaves the heap


def phase():
    """One phase of start-up (firmware.device.boot / start) per top-level step."""
    phases = S["phases"]
    if phases:
        g = phases[-1]
        try:
            next(g)
        except StopIteration:
            phases.remove(g)  # (its last phase may have added the next generator)
    check(0, 0)


def booted():
    if "app" not in S:
        print("no_app device.main() did not start the loop (hanport.app.run)")
        raise SystemExit(5)
    del S["phases"]
    S["boot"] = gc.mem_alloc()
    print("startup_bytes", S["boot"] - S["harness"])


def slot():
    """A push from the meter, and the loop's first iteration after it."""
    k = S["slot"]
    S["slot"] = k + 1
    sim = S["sim"]
    sim.t = k * 2500
    sim.down = OUTAGE[0] <= k < OUTAGE[1]
    if k % HOUR == 0:  # on the hour: List 3, read from the file the set-up wrote
        if MPY:
            S["hourly"].append(gc.mem_alloc())  # in use after a collection: flat, or a leak
        f = S["l3buf"]
        with open(S["l3path"], "rb") as fh:
            fh.seek((k // HOUR) * len(f))
            fh.readinto(f)
        n = 3
    elif k % 4 == 0:
        f, n = S["l2"], 2
    else:
        f, n = S["l1"], 1
    S["produced"][n] += 1
    sim.uart.send(f)
    step()


def step():
    """One iteration of the loop, as a top-level step of its own (a collection before it)."""
    used = gc.mem_alloc()
    if used > S["live"]:
        S["live"], S["live_slot"] = used, S["slot"] - 1
    S["app"].step()
    # Only explicit frees (a list or string growing by reallocation) happen inside
    # a step, so this is its high-water mark, give or take those.
    peak = gc.mem_alloc()
    if peak > S["peak"]:
        S["peak"], S["peak_slot"] = peak, S["slot"] - 1
    check(used, peak)


def check(used, peak):
    if MPY and gc.mem_alloc() + gc.mem_free() > S["total"]:
        S["grew"] = S["slot"] - 1
        S["grew_at"] = (used, peak - used)
        report()
        raise SystemExit(3)


def report():
    import heapday_kit

    heapday_kit.report(S)


class Steps:
    """MPY_STEPS without a list of 34,560 entries (the list alone would not fit)."""

    def __init__(self, slots):
        self.slots = slots

    def __len__(self):
        return 4 + BOOT_PHASES + self.slots * STEPS_PER_SLOT + 1

    def __getitem__(self, k):
        if k < 3:
            return (setup, harness, boot)[k]
        if k < 3 + BOOT_PHASES:
            return phase
        if k == 3 + BOOT_PHASES:
            return booted
        k -= 4 + BOOT_PHASES
        if k < self.slots * STEPS_PER_SLOT:
            return step if k % STEPS_PER_SLOT else slot
        return report


if MPY:
    if sys.argv[1:2] == ["groups"]:
        import heapday_kit

        MPY_STEPS = heapday_kit.group_steps(S)
        del heapday_kit
    else:
        # day SLOTS HEAP: HEAP must be the runner's --heap (it cannot be read here)
        S["heap"] = int(sys.argv[3][:-1]) * 1024 if sys.argv[3][-1] in "kK" else int(sys.argv[3])
        MPY_STEPS = Steps(int(sys.argv[2]))
elif __name__ == "__main__":
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.join(os.path.dirname(here), "lib"), os.path.dirname(here), here]
    gc.mem_alloc = gc.mem_free = lambda: 0  # CPython: the day's counts, no heap figures
    steps = Steps(int(sys.argv[2]) if len(sys.argv) > 2 else SLOTS)
    for i in range(len(steps)):
        steps[i]()
