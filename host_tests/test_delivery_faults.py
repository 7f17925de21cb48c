"""Nothing lost (issue 7): the whole loop through broker, network and power faults.

Everything real but the meter and the faults: a real mosquitto (brokers.py), the
product's own MQTT client (hanport.mqtt through pc.parts.mqtt_factory, with a
TIMEOUT_MS deadline per call), the durable queue on a directory
(pc.parts.PcStorage) and hanport.app.App, stepped here so that every turn is
timed. The faults sit between the loop and the broker (faultproxy.py) or in the
link. A subscriber on the broker itself counts what arrived.

Meter traffic: Aidon List 3 frames (framebuild.aidon_list3), each one meter hour
after the last, with List 1 (and List 2) between them, one frame every PERIOD_S
of real time: simulated hours are meter clock hours. Every List 3 after the
first closes an hour, so the loop also queues a <base>/hour message for it.

The only knob turned for speed: the session's backoff is 100..400 ms instead of
1..300 s (FAST_BACKOFF), except in the CONNACK test, which measures the backoff.
Each scenario prints one line, `faults: <name>: produced N, delivered N,
repeated N; hours N/N, repeated N; ...`, and asserts those figures.
"""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

import framebuild as fb
from brokers import Subscriber, broker_fixture
from faultproxy import FaultProxy
from hanport.app import App
from hanport.backoff import Backoff
from pc import parts as pc_parts

USER, PASSWORD = "han", "fault-pw"
TIMEOUT_MS = 1000  # the client's deadline for each call
SLACK_S = 0.3  # a turn may take one call's deadline plus this
PERIOD_S = 0.1  # a frame every 100 ms of real time
U0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)  # the first List 3's meter clock
HOUR_S = 3600
NAME = "faults"
BASE = "han/" + NAME


def fast_backoff():
    return Backoff(base_ms=100, cap_ms=400)


# -- the meter ------------------------------------------------------------------

class Meter:
    """Hands the loop one frame every period_s of real time, hour by hour.

    An hour is a List 3 (meter clock U0 + k hours, import register growing),
    then list1 List 1 frames (power = a running number, so each is told
    apart) and a List 2 when list2. The meter sends only the hours allowed
    (allow(n)); after them it is quiet. A pause in the loop (a blocking call)
    delays the next frame, as the UART's buffer would hold it."""

    def __init__(self, list1=1, list2=False, period_s=PERIOD_S):
        self.list1 = list1
        self.list2 = list2
        self.period = period_s
        self.hours = 0  # List 3 sent
        self.powers = []  # List 1 powers sent, in order
        self.list2_powers = []
        self.allowed = 0
        self.queue = []  # frames of the hour being sent
        self.frame = b""
        self.pos = 0
        self.t = 0.0

    def allow(self, hours):
        self.allowed += hours

    def idle(self):
        return self.hours >= self.allowed and not self.queue and self.pos >= len(self.frame)

    def _hour(self):
        k = self.hours
        self.hours += 1
        regs = [10000000 + 1230 * k + 10 * (k * k % 7), 0, 0, 0]
        frames = [fb.aidon_list3(U0 + timedelta(hours=k), regs)]
        for _ in range(self.list1):
            p = 1000 + len(self.powers) + len(self.list2_powers)
            self.powers.append(p)
            frames.append(fb.aidon_list1(p))
        if self.list2:
            p = 1000 + len(self.powers) + len(self.list2_powers)
            self.list2_powers.append(p)
            frames.append(fb.aidon_list2(p))
        return frames

    def readinto(self, buf):
        if self.pos >= len(self.frame):
            now = time.monotonic()
            if now < self.t:
                return None
            if not self.queue:
                if self.hours >= self.allowed:
                    return None
                self.queue = self._hour()
            self.frame = self.queue.pop(0)
            self.pos = 0
            self.t = now + self.period
        n = min(len(buf), len(self.frame) - self.pos)
        buf[:n] = self.frame[self.pos:self.pos + n]
        self.pos += n
        return n


def clock_of(k):
    return fb.local(U0 + timedelta(hours=k)).strftime("%Y-%m-%dT%H:%M:%S")


# -- the network ----------------------------------------------------------------

class Link:
    """The Wi-Fi: poll() is what the loop sees; down() also kills the path (a proxy blackout)."""

    def __init__(self, proxy=None):
        self.up = True
        self.proxy = proxy
        self.changed = None

    def set(self, up):
        self.up = up
        self.changed = time.monotonic()
        if self.proxy is not None:
            self.proxy.blackout = not up

    def poll(self):
        return self.up

    def state(self):
        return "got_ip" if self.up else "no_ap"

    def rssi(self):
        return -60 if self.up else None


# -- the loop -------------------------------------------------------------------

class Loop:
    """hanport.app.App on a state directory, stepped and timed by the test."""

    def __init__(self, tmp_path, port, meter, link=None, keepalive=60, discovery=True,
                 backoff=fast_backoff):
        self.dir = str(tmp_path / "state")
        self.meter = meter
        self.link = link or Link()
        self.cfg = pc_parts.make_config("127.0.0.1", port, name=NAME, user=USER,
                                        password=PASSWORD, keepalive=keepalive)
        self.cfg["ha"] = {"discovery": discovery, "prefix": "homeassistant"}
        self.backoff = backoff
        self.logs = []  # (time.monotonic(), line)
        self.steps = []  # seconds each App.step() took
        self.connects = []  # (start, end, ok) of each client.connect()
        self.acked = []  # (topic, payload) of each QoS 1 publish the broker acknowledged
        self.boots = 0
        self.app = None
        self.boot()

    def _factory(self):
        inner = pc_parts.mqtt_factory(TIMEOUT_MS)
        attempts = self.connects
        acked = self.acked

        def factory(*args):
            c = inner(*args)
            connect = c.connect
            publish = c.publish

            def counted(topic, payload, retain=False, qos=0):
                publish(topic, payload, retain, qos)
                if qos:
                    acked.append((topic.decode(), bytes(payload)))
            c.publish = counted

            def timed():
                t = time.monotonic()
                try:
                    connect()
                except BaseException:
                    attempts.append((t, time.monotonic(), False))
                    raise
                attempts.append((t, time.monotonic(), True))
            c.connect = timed
            return c
        return factory

    def boot(self):
        """A new App on the same state directory: a (re)boot. The old one is
        dropped without a word, as a power cut would leave it."""
        self.boots += 1
        self.app = App(self.meter, pc_parts.PcClock(), self.link, self._factory(),
                       pc_parts.PcStorage(self.dir), pc_parts.PcWatchdog(),
                       pc_parts.PcSystem(), self.cfg, log=self._log)
        if self.backoff is not None:
            self.app.session.backoff = self.backoff()

    def _log(self, line):
        self.logs.append((time.monotonic(), line))

    def step(self):
        t = time.monotonic()
        self.app.step()
        self.steps.append(time.monotonic() - t)

    def until(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError("not within {} s: {}; log: {}".format(
                    timeout, what, [line for _, line in self.logs[-8:]]))
            self.step()

    def feed(self, hours):
        """The meter sends `hours` more hours; the loop runs until it has read them."""
        self.meter.allow(hours)
        self.until(self.meter.idle, hours * (2 + self.meter.list1 + self.meter.list2) * 1.5 + 5,
                   "the meter's frames read")

    def settle(self, sub, timeout=10):
        """Run until connected, the outbox is empty and the subscriber has every List 3."""
        def done():
            return (self.app.session.client is not None and not len(self.app.outbox)
                    and len(set(list3_clocks(sub))) >= self.meter.hours)
        self.until(done, timeout, "everything delivered")
        time.sleep(0.2)  # what is on its way (QoS 0 too) reaches the subscriber

    def lost_times(self):
        return [t for t, line in self.logs if "connection lost" in line]

    def logs_since(self, t):
        return " ".join(line for when, line in self.logs if when >= t)

    def max_step(self):
        return max(self.steps)


# -- what arrived ---------------------------------------------------------------

def list3_clocks(sub):
    return [json.loads(m[2])["meter_clock"] for m in _on(sub, "/list3")]


def hour_starts(sub):
    return [json.loads(m[2])["start"] for m in _on(sub, "/hour")]


def _on(sub, suffix):
    subs = sub if isinstance(sub, (list, tuple)) else [sub]
    out = []
    for s in subs:
        out += s.on(BASE + suffix)
    return out


def figures(name, sub, meter, loop, extra=""):
    """Checks every hour arrived, in meter clock order, and returns (list3 repeats,
    hour repeats); prints the scenario's line."""
    want = [clock_of(k) for k in range(meter.hours)]
    got = list3_clocks(sub)
    first = list(dict.fromkeys(got))  # first arrival of each, in arrival order
    assert first == want, "List 3 missing or out of meter clock order"
    want_h = want[:-1]  # each List 3 after the first closes the hour before it
    got_h = hour_starts(sub)
    first_h = list(dict.fromkeys(got_h))
    assert first_h == want_h, "an hour missing or out of order"
    rep, rep_h = len(got) - len(first), len(got_h) - len(first_h)
    print("faults: {}: produced {}, delivered {}, repeated {}; hours {}/{}, repeated {}; "
          "longest turn {} ms{}".format(name, meter.hours, len(first), rep, len(first_h),
                                        len(want_h), rep_h, int(loop.max_step() * 1000), extra))
    assert loop.max_step() <= TIMEOUT_MS / 1000 + SLACK_S, "a loop turn took longer than the deadline"
    return rep, rep_h


def repeated_as_counted(sub, topic_suffix):
    """{payload: copies} of the messages that arrived more than once."""
    seen = {}
    for m in _on(sub, topic_suffix):
        seen[m[2]] = seen.get(m[2], 0) + 1
    return {p: n for p, n in seen.items() if n > 1}


# -- fixtures -------------------------------------------------------------------

broker = broker_fixture(USER, PASSWORD)


@pytest.fixture
def closing():
    things = []
    yield things.append
    for t in reversed(things):
        t.close()


def subscriber(broker, closing):
    s = Subscriber(broker.port, "viewer", "view-pw", "#")
    closing(s)
    return s


# -- the scenarios --------------------------------------------------------------

def test_broker_down_for_24_hours_with_a_power_cut_in_the_middle(tmp_path, broker, closing):
    meter = Meter(list1=1)
    sub1 = subscriber(broker, closing)
    loop = Loop(tmp_path, broker.port, meter)
    loop.feed(2)
    loop.settle(sub1)

    broker.stop()
    loop.feed(12)
    queued = len(loop.app.outbox.durable)
    assert queued == 12 * 2  # 12 List 3 and the 12 hours they closed, on flash
    loop.boot()  # power cut: the first App is never closed
    assert len(loop.app.outbox.durable) == queued
    loop.feed(12)
    assert len(loop.app.outbox.durable) == 24 * 2

    broker.start()
    sub2 = subscriber(broker, closing)  # connected before the loop tries again
    loop.settle([sub1, sub2], timeout=15)
    rep, rep_h = figures("broker down 24 h, reboot at 12 h", [sub1, sub2], meter, loop,
                         "; reboots 1")
    assert (rep, rep_h) == (0, 0)  # no PUBACK was lost: nothing twice
    assert loop.app.outbox.durable.dropped == 0


def test_a_broker_that_closes_after_every_publish(tmp_path, broker, closing):
    proxy = FaultProxy(broker.port)
    closing(proxy)
    sub = subscriber(broker, closing)
    meter = Meter(list1=1)
    loop = Loop(tmp_path, proxy.port, meter)

    # Every PUBLISH closes the connection before its PUBACK: the session never
    # gets past its own "online", and nothing may be counted published.
    proxy.close_after_publish = True
    loop.feed(4)
    assert loop.app.published == 0 and loop.app.sent == 0 and loop.app.session.connects == 0
    assert len(loop.connects) >= 3 and all(ok for _, _, ok in loop.connects)
    assert list3_clocks(sub) == []  # the queue never reached the broker

    # The third PUBLISH of each connection loses its PUBACK: billing messages
    # reach the broker but stay queued, and are sent again on the next connection.
    proxy.close_after_publish = 3
    loop.feed(6)
    loop.until(lambda: len(proxy.cut) >= 8 and not len(loop.app.outbox.durable)
               or len(proxy.cut) >= 40, 15, "PUBACKs cut")
    proxy.close_after_publish = False
    loop.settle(sub)

    lost = {}
    for topic, payload, qos in proxy.cut:
        if qos and (topic.endswith(b"/list3") or topic.endswith(b"/hour")):
            lost[(topic, payload)] = lost.get((topic, payload), 0) + 1
    rep, rep_h = figures("broker closes after publish", sub, meter, loop,
                         "; PUBACKs lost {} (billing {})".format(
                             sum(1 for c in proxy.cut if c[2]), sum(lost.values())))
    # Each repeat is a PUBACK lost, message for message.
    twice = {}
    for suffix in ("/list3", "/hour"):
        for payload, n in repeated_as_counted(sub, suffix).items():
            twice[((BASE + suffix).encode(), payload)] = n - 1
    assert twice == lost
    assert rep + rep_h == sum(lost.values()) > 0
    # Nothing counted published that did not arrive: `published` counts PUBACKs
    # (all but the session's own "online"), and each acknowledged message arrived.
    acked = [m for m in loop.acked if m[0] != BASE + "/status"]
    assert loop.app.published == len(acked)
    arrived = set((m[1], m[2]) for m in sub.messages)
    assert [m for m in acked if m not in arrived] == []


def test_a_listener_that_never_answers_connack(tmp_path, broker, closing):
    proxy = FaultProxy(broker.port)
    closing(proxy)
    proxy.hold_new = True  # accepts, reads CONNECT, never answers
    sub = subscriber(broker, closing)
    meter = Meter(list1=1)
    # The real backoff arithmetic, scaled down, at its maximum (no jitter) so the
    # gaps are exact: 250, 500, 1000 ms.
    loop = Loop(tmp_path, proxy.port, meter,
                backoff=lambda: Backoff(base_ms=250, cap_ms=1000, rand=lambda n: n - 1))
    meter.allow(1000)
    loop.until(lambda: len(loop.connects) >= 4, 15, "four attempts")
    read = meter.hours
    assert read >= 8  # the meter was read all along
    assert len(loop.app.outbox.durable) == 2 * read - 1
    delays = [int(line.rsplit("retry in ", 1)[1].split()[0]) for _, line in loop.logs
              if "retry in" in line]
    assert delays[:3] == [250, 500, 1000]
    gaps = []
    for (s0, e0, ok0), (s1, e1, ok1), d in zip(loop.connects, loop.connects[1:], delays):
        assert not ok0 and e0 - s0 >= TIMEOUT_MS / 1000 - 0.01  # each used up its deadline
        gap = s1 - e0  # from the END of an attempt to the start of the next
        gaps.append(int(gap * 1000))
        # ticks_ms counts whole milliseconds, so a gap can read up to 1 ms short.
        assert d / 1000 - 0.001 <= gap <= d / 1000 + 0.15
    meter.allowed = meter.hours
    proxy.hold_new = False  # the broker is reachable
    loop.settle(sub, timeout=10)
    rep, rep_h = figures("no CONNACK", sub, meter, loop,
                         "; attempts {}, gaps after the end of each {} ms (backoff {})".format(
                             len(loop.connects) - 1, gaps, delays[:3]))
    assert (rep, rep_h) == (0, 0)


def test_a_broker_that_stops_answering_pings(tmp_path, broker, closing):
    proxy = FaultProxy(broker.port)
    closing(proxy)
    proxy.drop_pingresp = True
    sub = subscriber(broker, closing)
    # keepalive 1 s: a ping after 0.5 s without sending. An hour every 0.8 s and
    # nothing else, so the loop pings between hours (discovery would keep it busy).
    meter = Meter(list1=0, period_s=0.8)
    loop = Loop(tmp_path, proxy.port, meter, keepalive=1, discovery=False)
    loop.feed(1)
    loop.settle(sub)
    loop.feed(6)
    loop.settle(sub)
    lost = loop.lost_times()
    assert len(lost) >= 2 and loop.app.session.connects >= 3
    after = []  # from the unanswered ping to the session declared lost
    for t in lost:
        ping = max(p for p in proxy.ping_times if p < t)
        after.append(int((t - ping) * 1000))
    assert all(TIMEOUT_MS * 0.9 <= ms <= 2 * TIMEOUT_MS for ms in after), after
    rep, rep_h = figures("pings unanswered", sub, meter, loop,
                         "; sessions lost {}, each {} ms after its ping".format(len(lost), after))
    assert (rep, rep_h) == (0, 0)


def test_wifi_dropping_for_minutes(tmp_path, broker, closing):
    proxy = FaultProxy(broker.port)
    closing(proxy)
    link = Link(proxy)
    sub = subscriber(broker, closing)
    meter = Meter(list1=2, list2=True)
    loop = Loop(tmp_path, proxy.port, meter, link=link)
    loop.feed(2)
    loop.settle(sub)

    p1, p2 = len(meter.powers), len(meter.list2_powers)
    replaced = loop.app.outbox.replaced
    link.set(False)  # minutes of no Wi-Fi, as seconds of real time
    loop.feed(8)
    ended = loop.lost_times()[-1] - link.changed
    assert "connection lost: network_down" in loop.logs_since(link.changed)
    assert loop.app.session.client is None
    down_l1, down_l2 = meter.powers[p1:], meter.list2_powers[p2:]
    link.set(True)
    loop.settle(sub)
    # List 1 and List 2 were kept as the latest of each, not queued.
    got_l1 = [json.loads(m[2])["power_import_w"] for m in _on(sub, "/list1")]
    got_l2 = [json.loads(m[2])["power_import_w"] for m in _on(sub, "/list2")]
    assert [p for p in got_l1 if p in down_l1] == [down_l1[-1]]
    assert [p for p in got_l2 if p in down_l2] == [down_l2[-1]]
    assert loop.app.outbox.replaced - replaced >= len(down_l1) + len(down_l2) - 3
    loop.feed(2)
    loop.settle(sub)
    rep, rep_h = figures("Wi-Fi down", sub, meter, loop,
                         "; session ended {} ms after the drop; List 1 {} made while down, {} sent"
                         .format(int(ended * 1000), len(down_l1),
                                 len([p for p in got_l1 if p in down_l1])))
    # Ended by the loop's look at the link in its next turn: no publish into the
    # dead link waited out its deadline, nor a goodbye that could not arrive.
    assert ended < TIMEOUT_MS / 1000 / 2
    assert (rep, rep_h) == (0, 0)
