"""The PC twin (the firmware's loop and MQTT client) against a real mosquitto with passwords."""
import json
import threading
import time
from decimal import Decimal

import pytest

from pc import parts as pc_parts  # noqa: E402
from brokers import Subscriber, broker_fixture
from corpus import BY_ID
from hanport import fields
from hanport.app import run
from loop_fakes import FakeClock

USER, PASSWORD = "han", "s3cret-pw"
CAPTURE = pc_parts.ROOT + "/tools/data/aidon_demo.hex"


broker = broker_fixture(USER, PASSWORD)


def cfg_for(broker, password=PASSWORD, diag=60):
    return pc_parts.make_config("127.0.0.1", broker.port, name="e2e", user=USER,
                                password=password, diag_interval_s=diag)


def parts():
    return (pc_parts.PcLink(), pc_parts.mqtt_factory(timeout_ms=3000), pc_parts.PcStorage(None),
            pc_parts.PcWatchdog(), pc_parts.PcSystem())


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class LoopThread:
    """run() in a thread until stop(); the test watches from outside."""

    def __init__(self, source, cfg, clock=None):
        self.done = threading.Event()
        self.app = None
        self.logs = []
        link, factory, storage, wd, system = parts()

        def stop(app):
            self.app = app
            return self.done.is_set()

        self.t = threading.Thread(target=run, args=(source, clock or pc_parts.PcClock(), link,
                                                    factory, storage, wd, system, cfg),
                                  kwargs={"stop": stop, "log": self.logs.append}, daemon=True)
        self.t.start()

    def stop(self):
        self.done.set()
        self.t.join(10)


class Paced:
    """Frames one after another every period_s of real time, for ever."""

    def __init__(self, frames, period_s=0.1):
        self.frames = frames
        self.period = period_s
        self.t = time.monotonic()
        self.i = 0

    def readinto(self, buf):
        if time.monotonic() < self.t:
            return None
        f = self.frames[self.i % len(self.frames)]
        self.i += 1
        self.t += self.period
        buf[:len(f)] = f
        return len(f)


def expected_fields(frame_id):
    exp = {}
    for obis, value in BY_ID[frame_id]["expected"]["obis"].items():
        entry = fields.lookup(obis)
        exp[entry[0] if entry else obis] = Decimal(repr(value)) if isinstance(value, (int, float)) else value
    return exp


def test_replayed_capture_gives_one_message_per_valid_frame_with_exact_values(broker):
    sub = Subscriber(broker.port, "viewer", "view-pw", "han/e2e/#")
    try:
        frames = pc_parts.read_capture(CAPTURE)
        held = []  # the App: the replay waits until the last reading left, as a meter's pace does
        src = pc_parts.ReplaySource(frames, ready=lambda: bool(held) and not len(held[0].outbox))

        def stop(a):
            held[:] = [a]
            return src.done() and a.session.client is not None and not len(a.outbox)

        link, factory, storage, wd, system = parts()
        app = run(src, pc_parts.PcClock(), link, factory, storage, wd, system, cfg_for(broker),
                  stop=stop)
        valid = [(label, f) for label, f in frames if BY_ID[label]["expected"]["ok"]]
        assert len(valid) == len(frames) - 1  # the damaged capture is dropped
        got = lambda: [m for m in sub.messages if "/list" in m[1]]  # noqa: E731
        assert wait_for(lambda: len(got()) >= len(valid), 5)
        time.sleep(0.3)  # nothing more may arrive
        msgs = got()
        assert len(msgs) == len(valid)
        for (label, _), (_, topic, payload, retain) in zip(valid, msgs):
            want = BY_ID[label]["expected"]
            assert topic == "han/e2e/list{}".format(want["list"])
            doc = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
            assert (doc.pop("meter"), doc.pop("list")) == ("aidon", want["list"])
            assert abs(int(doc.pop("ts")) - time.time()) < 60
            assert doc == expected_fields(label)
        assert app.deframer.errors["short"] + app.deframer.errors["fcs"] >= 1
        status = sub.on("/status")
        assert [m[2] for m in status] == [b"online", b"offline"]
        # A subscriber that comes later gets the retained status, the last hourly
        # list, the last closed hour (the capture holds 18:00 and 19:00) and the
        # energy summary.
        late = Subscriber(broker.port, "viewer", "view-pw", "han/e2e/#")
        assert wait_for(lambda: len(late.messages) >= 4, 3)
        retained = {m[1]: (m[2], m[3]) for m in late.messages}
        assert set(retained) == {"han/e2e/status", "han/e2e/list3", "han/e2e/hour", "han/e2e/energy"}
        assert retained["han/e2e/status"] == (b"offline", True)
        assert retained["han/e2e/list3"] == (msgs[-1][2], True)
        hour = json.loads(retained["han/e2e/hour"][0])
        assert (hour["start"], hour["end"], hour["hours"], hour["import_wh"]) == (
            "2019-06-12T18:00:00", "2019-06-12T19:00:00", 1, 21885170 - 21882340)
        late.close()
    finally:
        sub.close()


def test_wrong_password_is_named_and_retried_with_backoff(broker):
    loop = LoopThread(Paced([bytes.fromhex(BY_ID["aidon_6525_it_list1"]["hex"])], 0.5),
                      cfg_for(broker, password="not-the-password"))
    try:
        time.sleep(7.5)
        app = loop.app
        assert app.session.state == "not_authorised"
        assert app.session.last_error == "not_authorised"
        # waits of 0.5-1, 1-2, 2-4 s: 4 tries in 7.5 s, never a tight loop
        assert 3 <= app.session.connect_failures <= 5, app.session.connect_failures
        from hanport import diag
        d = json.loads(diag.payload(app))
        assert d["last_connect_error"] == "not_authorised" and d["connects"] == 0
        assert d["readings"] >= 10  # the meter is read all the same
        assert not any("not-the-password" in line for line in loop.logs)
        assert any("failed: not_authorised; retry in" in line for line in loop.logs)
    finally:
        loop.stop()


def test_broker_restart_mid_stream_ends_reconnected_and_publishing(broker):
    frames = [bytes.fromhex(BY_ID[i]["hex"]) for i in ("aidon_6525_it_list1", "aidon_6525_it_list2")]
    loop = LoopThread(Paced(frames, 0.1), cfg_for(broker))
    sub = Subscriber(broker.port, "viewer", "view-pw", "han/e2e/#")
    try:
        assert wait_for(lambda: len(sub.on("/list1")) >= 5, 5)
        sub.close()
        broker.stop()
        time.sleep(2)
        assert loop.app.session.client is None and loop.app.session.disconnects == 1
        broker.start()
        sub = Subscriber(broker.port, "viewer", "view-pw", "han/e2e/#")
        assert wait_for(lambda: len(sub.on("/list1")) >= 5 and len(sub.on("/list2")) >= 2, 15), \
            loop.logs
        assert loop.app.session.connects >= 2
        assert sub.on("/status")[-1][2] == b"online"
        assert any(line.startswith("mqtt: connection lost") for line in loop.logs)
    finally:
        loop.stop()
        sub.close()


def test_meter_silence_shows_in_diag_and_clears_when_frames_return(broker):
    # Simulated time for the loop (30 s of silence in a fraction of a second),
    # the real client and mosquitto underneath.
    clock = FakeClock(epoch=1700000000)
    frame = bytes.fromhex(BY_ID["aidon_6525_it_list1"]["hex"])

    class Gap:
        # a List 1 every 2.5 s, none from 10 s to 70 s
        slot = -1

        def readinto(self, buf):
            t = clock.t
            if (t < 10000 or t >= 70000) and t // 2500 != self.slot:
                self.slot = t // 2500
                buf[:len(frame)] = frame
                return len(frame)
            return None

    sub = Subscriber(broker.port, "viewer", "view-pw", "han/e2e/diag")
    loop = LoopThread(Gap(), cfg_for(broker, diag=10), clock=clock)
    try:
        def diags():
            return [json.loads(m[2]) for m in sub.on("/diag")]
        assert wait_for(lambda: any(d["uptime_s"] >= 90 for d in diags()), 20)
        loop.stop()
        time.sleep(0.2)
        states = [(d["uptime_s"], d["meter"]) for d in diags()]
        silent = [d for d in diags() if d["meter"] == "silent"]
        assert silent, states
        assert silent[-1]["meter_msg"].startswith("no data from the meter for ")
        assert diags()[-1]["meter"] == "ok", states
    finally:
        loop.stop()
        sub.close()
