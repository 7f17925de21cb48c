"""What host_tests/heapday.py needs only before and after its simulated day:
the meter's frames, the config file, start-up, the report, the module groups.
The driver drops this module once used, so its code leaves the heap."""
import gc
import os
import sys

MPY = sys.implementation.name == "micropython"
SPLIT_RESERVE = 128 * 1024 * 1024  # this port's gc.mem_free() counts this much room to grow
DIR = "/heapday" if MPY else "/tmp/heapday-%d" % os.getpid()
DAY = (2026, 3, 2)  # heapday_fakes.EPOCH: the meter clock shows the same digits
ENERGY_START = 2188234  # 1-0:1.8.0 in 10 Wh (Aidon scaler 1)
SLOT_MS = 2500

from heapday_fakes import FakeClient, Sim, SimTime, install


# -- the meter -------------------------------------------------------------------

def build_list3(path):
    """24 Aidon List 3 frames (00:00 .. 23:00) into the file at path, each the same size.

    tools/bench_heap.py builds the file on CPython and mounts it: building it here
    would make more garbage than a small heap holds in one step."""
    import framebuild as fb

    frames = []
    for h in range(24):
        def q(c, d, v, scaler, unit, enc=fb.u32):
            return fb.structure(fb.obis(1, 0, c, 7 if d == 7 else 8, 0), enc(v), fb.scaler_unit(scaler, unit))
        body = fb.array(
            fb.structure(fb.obis(1, 1, 0, 2, 129), fb.visible("AIDON_V0001")),
            fb.structure(fb.obis(0, 0, 96, 1, 0), fb.visible("7359992899161110")),
            fb.structure(fb.obis(0, 0, 96, 1, 7), fb.visible("6525")),
            q(1, 7, 2204 + h, 0, 27), q(2, 7, 0, 0, 27), q(3, 7, 0, 0, 29), q(4, 7, 135, 0, 29),
            q(31, 7, 48, -1, 33, fb.i16), q(71, 7, 69, -1, 33, fb.i16),
            q(32, 7, 2377, -1, 35, fb.u16), q(52, 7, 2364, -1, 35, fb.u16), q(72, 7, 2368, -1, 35, fb.u16),
            fb.structure(fb.obis(0, 0, 1, 0, 0), fb.octets(fb.clock(DAY[0], DAY[1], DAY[2], h, 0, 0))),
            q(1, 8, ENERGY_START + 150 * h, 1, 30), q(2, 8, 0, 1, 30),
            q(3, 8, 33350 + 2 * h, 1, 32), q(4, 8, 72540 + 3 * h, 1, 32))
        frames.append(fb.push_frame(body))
    size = len(frames[0])
    with open(path, "wb") as f:
        for fr in frames:
            assert len(fr) == size
            f.write(fr)
    del sys.modules["framebuild"]
    return size


def corpus_frame(frame_id):
    # frames.json is large: read it line by line for the one frame wanted.
    path = (os.path.dirname(__file__) or ".") + "/data/corpus.hex"
    from binascii import unhexlify

    with open(path) as f:
        for line in f:
            if line.startswith(frame_id + "\t"):
                return unhexlify(line.split("\t")[1].strip())
    raise ValueError("no frame " + frame_id)


# -- set-up and report -------------------------------------------------------------

def setup(S):
    try:  # the same day every run: the backoff's jitter draws from random
        import random

        random.seed(9)
    except (ImportError, AttributeError):
        pass
    try:
        os.mkdir(DIR)
    except OSError:
        pass
    path = DIR + "/list3.bin"
    try:
        size = os.stat(path)[6] // 24
    except OSError:
        size = build_list3(path)
    S["l3path"] = path
    S["l3buf"] = bytearray(size)
    S["l1"] = corpus_frame("aidon_6525_it_list1")
    S["l2"] = corpus_frame("aidon_6525_it_list2")
    S["produced"] = [0, 0, 0, 0]  # by list number
    S["sim"] = Sim
    S["client"] = FakeClient
    S["simtime"] = SimTime
    with open(DIR + "/config.json", "w") as f:
        # Every feature on: raw frames, NTP, the watchdog, the safe-boot pin (and
        # whatever the defaults switch on, such as discovery).
        f.write('{"device": {"name": "day"}, "wifi": {"ssid": "home", "password": "wifi-pass-1"},'
                ' "mqtt": {"host": "10.0.0.2", "user": "han", "password": "mqtt-pass-1",'
                ' "raw_frames": true}, "ntp_host": "pool.ntp.org"}')
    install()


def boot(S):
    """Start firmware.device.main()'s phases (device.boot(), then device.start())
    as the ESP32 would, for heapday.py to step through: S["phases"] holds the
    generators; the last phase's hanport.app.run builds the App into S["app"]."""
    from firmware import clock, device, safeboot
    from hanport import app

    for m in (clock, safeboot, device):
        if hasattr(m, "time"):
            m.time = S["simtime"]
    client = S["client"]
    phases = S["phases"] = []
    real_run, real_app_run = device.run, app.run

    def run(cfg, storage):
        device.run = real_run
        if hasattr(device, "start"):
            phases.append(device.start(cfg, storage))
        else:  # a device.py without phases: run() in one step
            phases.append(_once(real_run, cfg, storage))

    def capture(source, clock, link, client_factory, storage, watchdog, system, config, *a, **kw):
        app.run = real_app_run  # the closures would keep this module in the heap
        S["app"] = app.App(source, clock, link, client, storage, watchdog, system, config)

    device.run = run
    app.run = capture
    where = (DIR + "/config.json", DIR + "/data", DIR + "/safeboot")
    if hasattr(device, "boot"):
        phases.append(device.boot(*where))
    else:  # a device.py without phases: main() in one step
        phases.append(_once(device.main, *where))


def _once(f, *args):
    f(*args)
    return
    yield


def clock_text(k):
    if k < 0:
        return "start-up"
    s = k * SLOT_MS // 1000
    return "%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def report(S):
    sim = S["sim"]
    app = S["app"]
    p = S["produced"]
    if S["grew"] is not None:
        used, step = S["grew_at"]
        out("out_of_heap_at", "%s in_use %d push_allocated %d" % (clock_text(S["grew"]), used, step))
    out("slots", S["slot"])
    out("produced", "%d %d %d" % (p[1], p[2], p[3]))
    dec = getattr(app, "decoder", None)
    out("decoded", getattr(app, "readings", getattr(dec, "readings", -1)))
    out("frames", getattr(getattr(app, "deframer", None), "frames", -1))
    counts = sim.counts
    l1, l2, l3, raw = count_in(counts, b"/list1"), count_in(counts, b"/list2"), count_in(counts, b"/list3"), count_in(counts, b"/raw")
    out("delivered", "%d %d %d" % (l1, l2, l3))
    out("raw_delivered", raw)
    out("delivered_other", sum(counts.values()) - l1 - l2 - l3 - raw)
    box = getattr(app, "outbox", None)
    # Messages that never went out: the durable queue's drops (full flash) and the
    # live and state messages a newer one replaced while they waited.
    out("dropped", box.durable.dropped + box.replaced if box is not None else -1)
    out("queued", len(box) if box is not None else -1)
    out("internal_errors", getattr(app, "errors", {}).get("internal", -1))
    out("connects", sim.connects)
    if MPY:
        out("in_use_max", "%d at %s" % (S["live"], clock_text(S["live_slot"])))
        out("peak", "%d at %s" % (S["peak"], clock_text(S["peak_slot"])))
        out("heap_total", S["total"] - SPLIT_RESERVE)
        out("hourly_in_use", " ".join([str(n) for n in S["hourly"]]))
    out("clean", int(S["grew"] is None))


def count_in(counts, suffix):
    n = 0
    for topic, c in counts.items():
        if topic.endswith(suffix):
            n += c
    return n


def out(name, value):
    print("%s %s" % (name, value))


# -- module groups ---------------------------------------------------------------

GROUPS = (
    # In import order: a group's figure is what importing it added, so modules
    # that app imports come before it, each under its own name.
    ("decoder", ("hanport.crc16", "hanport.hdlc", "hanport.axdr", "hanport.reading", "hanport.decode")),
    ("layouts", ("hanport.fields", "hanport.items", "hanport.obis_array", "hanport.kaifa", "hanport.kamstrup")),
    ("energy", ("hanport.localtime", "hanport.energy")),
    ("discovery", ("hanport.discovery",)),
    ("flash queue", ("hanport.flashqueue",)),
    ("diag", ("hanport.ports", "hanport.diag")),
    ("mqtt client and session", ("hanport.mqtt", "hanport.backoff", "hanport.session")),
    ("loop+config", ("hanport.outbox", "hanport.publish", "hanport.config", "hanport.app")),
    ("firmware parts", ("firmware.clock", "firmware.safeboot", "firmware.storage", "firmware.system",
                        "firmware.watchdog", "firmware.wifi", "firmware.uart_source", "firmware.device")),
)
G = {"i": 0, "base": 0, "loaded": []}


def group_steps(S):
    def harness():
        S["harness"] = gc.mem_alloc()
        G["base"] = S["harness"]

    steps = [lambda: setup(S), harness]
    for _ in GROUPS:
        steps += [group_import, group_report]
    steps += [lambda: boot(S)] + [lambda: phase(S)] * 12 + [lambda: group_report_boot(S)]
    return steps


def group_import():
    title, names = GROUPS[G["i"]]
    G["i"] += 1
    got = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            __import__(name)
            got.append(name.split(".")[-1])
            G["loaded"].append(name)
        except ImportError as e:
            if name.split(".")[-1] not in str(e):
                raise  # a module that is there but fails to import
    G["title"] = "%s (%s)" % (title, " ".join(got)) if got else None


def group_report():
    if G["title"]:
        out("group", "%d %s" % (gc.mem_alloc() - G["base"], G["title"]))
    G["base"] = gc.mem_alloc()


def phase(S):
    if S["phases"]:
        g = S["phases"][-1]
        try:
            next(g)
        except StopIteration:
            S["phases"].remove(g)


def group_report_boot(S):
    gone = []
    for _, names in GROUPS:
        for name in names:
            if name in G["loaded"] and name not in sys.modules:
                gone.append(name.split(".")[-1])
    out("group", "%d built at start-up (buffers, objects)%s" % (
        gc.mem_alloc() - G["base"], ", net of what start-up forgets: " + " ".join(gone) if gone else ""))
    out("startup_bytes", gc.mem_alloc() - S["harness"])
