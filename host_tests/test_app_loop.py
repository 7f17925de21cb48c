"""The main loop with fake hardware and a fake broker, in simulated time."""
import json

from corpus import raw
from hanport import app as happ
from hanport.app import run
from loop_fakes import (FakeBroker, FakeClock, FakeSystem, FrameSource, MemStorage,
                        NoWatchdog, UpLink, config)

L1 = raw("aidon_6525_it_list1")
L2 = raw("aidon_6525_it_list2")
L3 = raw("aidon_6525_it_list3_a")


class Run:
    """One loop run: fake clock from 0, stopped at until_ms."""

    def __init__(self, frames=(L1,), period_ms=2500, count=None, broker=None, storage=None,
                 cfg=None, until_ms=60000, source=None, log=None):
        self.clock = FakeClock(epoch=1700000000)
        self.source = source or FrameSource(self.clock, list(frames), period_ms, count)
        self.broker = broker or FakeBroker(password="secret")
        self.storage = storage or MemStorage()
        self.logs = []
        self.attempts = []
        broker = self.broker

        def factory(*args):
            self.attempts.append(self.clock.t)
            return broker.factory(*args)

        self.app = run(self.source, self.clock, UpLink(), factory, self.storage, NoWatchdog(),
                       FakeSystem(), cfg or config(), stop=lambda a: self.clock.t >= until_ms,
                       log=log or self.logs.append)

    def on(self, suffix):
        return [m for m in self.broker.messages if m[0].endswith(suffix)]

    def diags(self):
        return [json.loads(m[1]) for m in self.on(b"/diag")]


def test_one_message_per_frame_and_status_online_then_offline():
    r = Run(frames=[L1, L1, L2, L3], count=4, until_ms=20000)
    topics = [m[0] for m in r.broker.messages
              if m[0].startswith(b"han/") and not m[0].endswith((b"/diag", b"/energy"))]
    assert topics == [b"han/test/status", b"han/test/list1", b"han/test/list1", b"han/test/list2",
                      b"han/test/list3", b"han/test/status"]
    assert r.broker.messages[0][1:] == (b"online", True)
    assert r.broker.messages[-1][1:] == (b"offline", True)
    assert r.on(b"/list3")[0][2] is True  # retained: a new subscriber gets the registers
    assert r.on(b"/list1")[0][2] is False


def test_wrong_password_retries_with_growing_gaps_and_says_not_authorised():
    cfg = config(password="wrong-pass-123")
    r = Run(cfg=cfg, until_ms=120000, count=1000)
    gaps = [b - a for a, b in zip(r.attempts, r.attempts[1:])]
    assert 6 <= len(r.attempts) <= 12, r.attempts
    assert all(b >= a for a, b in zip(gaps, gaps[1:])), gaps  # jitter never shrinks the wait
    assert max(gaps) <= 300000
    assert r.app.session.state == "not_authorised"
    assert r.app.session.last_error == "not_authorised"
    assert r.app.session.connect_failures == len(r.attempts)
    diag = json.loads(happ.diag.payload(r.app))
    assert diag["mqtt"] == "not_authorised" and diag["last_connect_error"] == "not_authorised"
    assert any("not_authorised" in line for line in r.logs)
    assert not any("wrong-pass-123" in line for line in r.logs)
    assert b"wrong-pass-123" not in happ.diag.payload(r.app)
    assert r.app.readings == 48  # the meter is still read meanwhile


def test_broker_outage_keeps_every_hourly_list_and_only_the_latest_live_one():
    broker = FakeBroker(password="secret")

    class Outage(FrameSource):
        # the broker dies at 5 s and comes back at 100 s
        def readinto(self, buf):
            broker.down = 5000 <= self.clock.t < 100000
            return FrameSource.readinto(self, buf)

    frames = [L3] + [L1] * 9  # List 3 every 25 s, List 1 between
    clock = FakeClock(epoch=1700000000)
    src = Outage(clock, frames, 2500, count=40, start_ms=10000)
    app = run(src, clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
              config(), stop=lambda a: clock.t >= 300000, log=lambda s: None)
    list3 = [m for m in broker.messages if m[0].endswith(b"/list3")]
    list1 = [m for m in broker.messages if m[0].endswith(b"/list1")]
    assert len(list3) == 4  # all of them, sent during the outage, delivered after it
    assert app.session.disconnects == 1 and app.session.connects == 2
    # List 1 while the broker was away: only the newest one waited (coalesced),
    # and it reached the broker with its original ts.
    assert 1 <= len(list1) <= 4 and app.outbox.replaced >= 30
    assert json.loads(list1[-1][1])["ts"] == 1700000000 + 107
    assert app.readings == 40
    assert len(app.outbox) == 0


def test_hourly_lists_are_qos1_and_counted_published_only_when_acknowledged():
    r = Run(frames=[L1, L2, L3], count=3, until_ms=20000)
    kinds = {}
    for (topic, payload, retain), qos in zip(r.broker.messages, r.broker.qos):
        kinds.setdefault(topic.rsplit(b"/", 1)[-1], set()).add((qos, retain))
    assert kinds[b"list3"] == {(1, True)}
    assert kinds[b"list1"] == {(0, False)} and kinds[b"list2"] == {(0, False)}
    assert kinds[b"status"] == {(1, True)}
    qos1 = sum(1 for q in r.broker.qos if q)
    # published: every QoS 1 message but the status ones (the session's own)
    assert r.app.published == qos1 - len(r.on(b"/status"))
    assert r.app.sent == sum(1 for q in r.broker.qos if not q)


def test_a_lost_puback_repeats_that_message_once_and_nothing_else():
    broker = FakeBroker(password="secret")
    broker.lose_on = b"/list3"
    clock = FakeClock(epoch=1700000000)
    sent = []

    class LoseFirstList3(FrameSource):
        def readinto(self, buf):
            n = FrameSource.readinto(self, buf)
            if self.sent == 1 and not sent:
                sent.append(1)
                broker.lose_acks = 1  # the next QoS 1 publish (this List 3) loses its PUBACK
            return n

    run(LoseFirstList3(clock, [L3], 2500, count=3), clock, UpLink(), broker.factory, MemStorage(),
        NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock.t >= 60000, log=lambda s: None)
    list3 = [m for m in broker.messages if m[0].endswith(b"/list3")]
    assert len(list3) == 4  # three readings, the first one twice
    assert list3[0] == list3[1]


def test_hourly_lists_queued_in_an_outage_survive_a_reboot_and_arrive_once_in_order():
    storage = MemStorage()
    clock = FakeClock(epoch=1700000000)
    broker = FakeBroker(password="secret")
    broker.down = True
    frames = [L3, raw("aidon_6525_it_list3_b")]
    run(FrameSource(clock, frames, 2500, count=len(frames)), clock, UpLink(), broker.factory,
        storage, NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock.t >= 20000,
        log=lambda s: None)
    assert not broker.messages
    broker.down = False  # after the reboot the broker is back
    clock2 = FakeClock(epoch=1700000100)
    app = run(FrameSource(clock2, [L1], count=0), clock2, UpLink(), broker.factory, storage,
              NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock2.t >= 20000,
              log=lambda s: None)
    list3 = [m[1] for m in broker.messages if m[0].endswith(b"/list3")]
    assert len(list3) == len(frames)
    assert [json.loads(p)["meter_clock"] for p in list3] == sorted(
        json.loads(p)["meter_clock"] for p in list3)
    assert len(app.outbox) == 0


def test_home_assistant_coming_online_gets_every_config_again():
    broker = FakeBroker(password="secret")
    clock = FakeClock(epoch=1700000000)
    at = []

    class Restart(FrameSource):
        def readinto(self, buf):
            if self.clock.t == 60000:
                at.append(len(broker.messages))
                broker.inbox.append((b"homeassistant/status", b"online"))
            return FrameSource.readinto(self, buf)

    run(Restart(clock, [L2], 2500, count=48), clock, UpLink(), broker.factory, MemStorage(),
        NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock.t >= 120000, log=lambda s: None)
    assert b"homeassistant/status" in broker.subscriptions
    configs = [(i, m) for i, m in enumerate(broker.messages) if m[0].startswith(b"homeassistant/")]
    before = set(m[0] for i, m in configs if i < at[0])
    after = set(m[0] for i, m in configs if i >= at[0])
    assert len(before) > 10 and after == before
    assert all(m[2] for i, m in configs)  # retained


def test_backoff_is_timed_from_the_end_of_a_slow_attempt():
    clock = FakeClock()
    broker = FakeBroker(password="secret")
    broker.down = True
    starts, ends = [], []

    def slow(*args):
        c = broker.factory(*args)
        real = c.connect

        def connect():
            starts.append(clock.t)
            clock.t += 10000  # the listener never answers: the whole timeout is used
            ends.append(clock.t)
            real()
        c.connect = connect
        return c

    app = happ.App(FrameSource(clock, [L1], count=0), clock, UpLink(), slow, MemStorage(),
                   NoWatchdog(), FakeSystem(), config(), log=lambda s: None)
    app.session.backoff.rand = lambda n: n - 1  # the longest wait: easy to check
    while clock.t < 120000:
        app.step()
    for end, nxt in zip(ends, starts[1:]):
        assert nxt - end >= 900, (starts, ends)  # 1 s, 2 s, ... after the end, not the start


def test_meter_silence_shows_in_diag_and_clears_when_frames_return():
    clock = FakeClock(epoch=1700000000)
    first = FrameSource(clock, [L1], 2500, count=4)
    later = FrameSource(clock, [L1], 2500, count=8, start_ms=90000)

    class Both:
        def readinto(self, buf):
            return first.readinto(buf) or later.readinto(buf)

    broker = FakeBroker(password="secret")
    logs = []
    run(Both(), clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
        config(diag_interval_s=10), stop=lambda a: clock.t >= 120000, log=logs.append)
    diags = [json.loads(m[1]) for m in broker.messages if m[0].endswith(b"/diag")]
    states = [(d["uptime_s"], d["meter"], d["meter_silent_s"]) for d in diags]
    silent = [d for d in diags if d["meter"] == "silent"]
    assert silent, states
    assert silent[-1]["meter_silent_s"] >= 70
    assert silent[-1]["meter_msg"].startswith("no data from the meter for ")
    assert diags[-1]["meter"] == "ok" and diags[-1]["meter_msg"] is None, states
    assert any(line.startswith("meter: no data from the meter") for line in logs)


def test_a_closed_port_from_boot_says_the_grid_company_may_not_have_opened_it():
    clock = FakeClock()
    nothing = FrameSource(clock, [L1], count=0)
    broker = FakeBroker(password="secret")
    run(nothing, clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
        config(diag_interval_s=30), stop=lambda a: clock.t >= 95000, log=lambda s: None)
    last = json.loads([m for m in broker.messages if m[0].endswith(b"/diag")][-1][1])
    assert last["meter"] == "silent" and last["frames"] == 0
    assert "may not be opened by the grid company" in last["meter_msg"]


def test_pings_keep_a_quiet_connection_alive():
    clock = FakeClock()
    broker = FakeBroker(password="secret")
    cfg = config(diag_interval_s=3600)
    run(FrameSource(clock, [L1], count=0), clock, UpLink(), broker.factory, MemStorage(),
        NoWatchdog(), FakeSystem(), cfg, stop=lambda a: clock.t >= 300000, log=lambda s: None)
    # keepalive 60 s: a ping after 30 s of silence, so about 10 in 300 s
    assert 8 <= broker.pings <= 11


def test_garbage_and_a_failing_source_never_stop_the_loop():
    clock = FakeClock()
    junk = bytes(range(256)) * 20 + L1

    class Flaky:
        n = 0

        def readinto(self, buf):
            self.n += 1
            if self.n % 7 == 0:
                raise OSError(5)  # a USB adapter pulled out
            if self.n == 3:
                buf[:256] = junk[:256]
                return 256
            return None

    broker = FakeBroker(password="secret")
    a = run(Flaky(), clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
            config(), stop=lambda a: clock.t >= 5000, log=lambda s: None)
    assert a.errors["source"] > 0
    assert a.deframer.errors["garbage"] > 0


def test_a_client_that_raises_anything_is_reconnected_not_fatal():
    broker = FakeBroker(password="secret")
    calls = [0]

    def factory(*args):
        c = broker.factory(*args)
        orig = c.publish

        def publish(topic, payload, retain=False, qos=0):
            calls[0] += 1
            if calls[0] == 3:
                raise IndexError("umqtt short read")
            return orig(topic, payload, retain, qos)
        c.publish = publish
        return c

    clock = FakeClock()
    a = run(FrameSource(clock, [L1], count=6), clock, UpLink(), factory, MemStorage(),
            NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock.t >= 30000,
            log=lambda s: None)
    assert a.session.disconnects == 1 and a.session.connects == 2
    assert len([m for m in broker.messages if m[0].endswith(b"/list1")]) == 6  # none lost


def test_publishes_per_iteration_are_bounded():
    clock = FakeClock()
    broker = FakeBroker(password="secret")
    a = happ.App(FrameSource(clock, [L1], period_ms=0, count=40), clock, UpLink(), broker.factory,
                 MemStorage(), NoWatchdog(), FakeSystem(), config(), log=lambda s: None)
    a.step()  # connects; reads and queues everything it can
    before = broker.count
    a.step()
    assert broker.count - before <= happ.MAX_PUBLISH + 1  # + one diag


def test_raw_frames_on_request():
    r = Run(frames=[L1], count=1, until_ms=5000, cfg=config(raw=True))
    assert r.on(b"/raw") == [(b"han/test/raw", L1.hex().encode(), False)]
    r = Run(frames=[L1], count=1, until_ms=5000)
    assert r.on(b"/raw") == []


def test_a_dropped_network_ends_the_session_and_it_resumes_when_back():
    clock = FakeClock()
    broker = FakeBroker(password="secret")

    class Flapping(UpLink):
        def poll(self):
            return not 10000 <= clock.t < 20000

        def state(self):
            return "got_ip" if self.poll() else "connecting"

    logs = []
    a = run(FrameSource(clock, [L1], count=12), clock, Flapping(), broker.factory, MemStorage(),
            NoWatchdog(), FakeSystem(), config(), stop=lambda a: clock.t >= 40000, log=logs.append)
    assert a.session.disconnects == 1 and a.session.connects == 2
    assert "mqtt: connection lost: network_down" in " ".join(logs)
    # Four List 1 came while the network was down: the newest of them waited.
    assert len([m for m in broker.messages if m[0].endswith(b"/list1")]) == 12 - a.outbox.replaced
    assert a.outbox.replaced >= 3


def test_a_crash_before_the_reboot_is_reported_once_in_diag():
    storage = MemStorage()
    storage.write(happ.LAST_CRASH, b"Traceback (most recent call last):\n  File \"x.py\", line 1\nMemoryError: memory allocation failed\n")
    r = Run(storage=storage, until_ms=5000)
    assert r.diags()[0]["last_crash"] == "MemoryError: memory allocation failed"
    assert not storage.read(happ.LAST_CRASH)  # the next boot does not report it again
    assert Run(storage=storage, until_ms=5000).diags()[0]["last_crash"] is None


def test_diag_carries_the_uart_counters_of_the_device_source():
    clock_run = Run(until_ms=1)  # for the frames' clock only
    source = FrameSource(clock_run.clock, [L1], 2500)
    source.overflows = 7
    source.irq_errors = 2
    d = Run(source=source, until_ms=5000).diags()[0]
    assert (d["rx_overflows"], d["irq_errors"]) == (7, 2)


def test_a_broken_file_system_still_delivers_the_hourly_lists_from_ram():
    class Broken(MemStorage):
        def names(self, prefix):
            raise OSError(5)

        def read(self, name):
            raise OSError(5)

    logs = []
    r = Run(frames=[L3], count=2, until_ms=10000, storage=Broken(), log=logs.append)
    assert len(r.on(b"/list3")) == 2
    assert r.app.errors["storage"] >= 1
    assert any("kept in RAM only" in line for line in logs)
