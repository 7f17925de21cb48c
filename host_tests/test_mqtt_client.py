"""hanport.mqtt.Client against the real mosquitto (password auth, loopback), behind
fault proxies (host_tests/faultproxy.py), and under the WebAssembly MicroPython.

The fault tests measure how long each failing call blocked and print it
("bound: ..."); the bound asserted is timeout_ms + SLACK_MS.
"""
import errno
import os
import socket
import subprocess
import sys
import time

import pytest

from brokers import Subscriber, broker_fixture, free_port
from faultproxy import FaultProxy
from hanport.mqtt import Client, connect_packet
from hanport.ports import BrokerRefused
from mpy import describe

USER, PASSWORD = "han", "s3cret-pw"
TIMEOUT_MS = 1000
SLACK_MS = 300  # thread scheduling on a busy test machine
SESSION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mqtt_fake_session.py")


broker = broker_fixture(USER, PASSWORD)


def client(port, user=USER, password=PASSWORD, cid="dongle", will=(b"t/status", b"will"),
           timeout_ms=TIMEOUT_MS, keepalive=60):
    return Client(cid, "127.0.0.1", port, user, password, keepalive, will[0], will[1], timeout_ms)


def subscriber(broker, topic="t/#"):
    return Subscriber(broker.port, "viewer", "view-pw", topic)


def wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def timed(f):
    """(exception or None, elapsed ms)."""
    t = time.monotonic()
    try:
        f()
        e = None
    except Exception as x:
        e = x
    return e, (time.monotonic() - t) * 1000


def report(what, ms):
    print("\nbound: %s: %d ms (timeout_ms %d)" % (what, ms, TIMEOUT_MS))


# -- against mosquitto --------------------------------------------------------

def test_qos0_qos1_and_retained_reach_a_subscriber(broker):
    sub = subscriber(broker)
    c = client(broker.port)
    try:
        c.connect()
        c.publish(b"t/live", b"zero")
        c.publish("t/hour", "Tårn ⚡", retain=True, qos=1)  # str: sent as UTF-8, counted in bytes
        assert wait_for(lambda: len(sub.messages) >= 2)
        got = [(m[1], m[2], m[3]) for m in sub.messages]
        assert got == [("t/live", b"zero", False), ("t/hour", "Tårn ⚡".encode(), False)]
        late = subscriber(broker)  # a later subscriber gets the retained one, flagged retained
        assert wait_for(lambda: late.messages)
        assert [(m[1], m[2], m[3]) for m in late.messages] == [("t/hour", "Tårn ⚡".encode(), True)]
        late.close()
    finally:
        c.disconnect()
        sub.close()


def test_wrong_password_is_broker_refused_5_without_the_secret(broker):
    c = client(broker.port, password="not-the-pw-123")
    with pytest.raises(BrokerRefused) as e:
        c.connect()
    assert e.value.code() == 5
    assert c.s is None  # closed
    assert "not-the-pw-123" not in str(e.value) + repr(e.value) + repr(c) + str(vars(c).keys())
    with pytest.raises(OSError) as e:
        c.publish(b"t/x", b"1")
    assert e.value.args[0] == errno.ENOTCONN


def test_a_user_with_an_empty_password_sends_an_empty_password_field(broker):
    pkt = connect_packet(b"d", b"han", None, 60, None, None)
    assert pkt[9] & 0xC0 == 0xC0 and pkt.endswith(b"\x00\x03han\x00\x00")
    for pw in (None, "", b""):
        # mosquitto 2.0 refuses empty passwords: a CONNACK 5 shows the packet was well formed
        with pytest.raises(BrokerRefused) as e:
            client(broker.port, password=pw).connect()
        assert e.value.code() == 5


def test_subscribe_then_poll_gets_messages_and_acks_qos1(broker):
    a = client(broker.port, cid="a")
    b = client(broker.port, cid="b")
    try:
        a.connect()
        assert a.subscribe(b"cmd/#", 1) == 1
        assert a.poll() is None
        b.connect()
        b.publish(b"cmd/one", b"1", qos=1)
        b.publish(b"cmd/two", b"2")
        got = []
        assert wait_for(lambda: got.append(a.poll()) or len([g for g in got if g]) >= 2)
        assert [g for g in got if g] == [(b"cmd/one", b"1"), (b"cmd/two", b"2")]
        # A message that arrives while publish waits for its PUBACK is kept for poll().
        a.publish(b"cmd/self", b"3", qos=1)
        assert wait_for(lambda: got.append(a.poll()) or (b"cmd/self", b"3") in got)
    finally:
        a.disconnect()
        b.disconnect()


def test_ping_is_answered_and_pings_do_not_stack(broker):
    p = FaultProxy(broker.port)
    c = client(p.port)
    try:
        c.connect()
        c.ping()
        time.sleep(0.2)
        assert c.poll() is None  # reads the PINGRESP
        c.ping()  # answered: a new PINGREQ
        assert wait_for(lambda: p.pingreqs == 2)
        time.sleep(0.2)
        p.drop_pingresp = True
        c.ping()  # the last was answered (ping reads it first): a new PINGREQ, never answered
        time.sleep(0.2)
        c.ping()  # unanswered but within timeout_ms: no second PINGREQ on top
        c.poll()
        time.sleep(0.2)
        assert p.pingreqs == 3
    finally:
        c.disconnect()
        p.close()


def test_clean_disconnect_is_no_will_even_with_a_pingresp_unread(broker):
    sub = subscriber(broker, "t/status")
    try:
        c = client(broker.port)
        c.connect()
        c.publish(b"t/status", b"online", retain=True, qos=1)
        c.ping()
        time.sleep(0.2)  # the PINGRESP waits unread in the socket
        c.disconnect()
        c.disconnect()  # twice: nothing happens, nothing raises
        time.sleep(0.5)
        assert [m[2] for m in sub.messages] == [b"online"]
        # The control: an abrupt close (no DISCONNECT) does give the will.
        d = client(broker.port, cid="other")
        d.connect()
        d._close()
        assert wait_for(lambda: [m[2] for m in sub.messages] == [b"online", b"will"])
    finally:
        sub.close()


def test_fields_over_65535_bytes_are_refused_before_anything_is_sent(broker):
    c = client(broker.port)
    c.connect()
    try:
        for topic, payload in ((b"t" * 65536, b""), (b"t/x", b"p" * 65536), ("é" * 32768, b"")):
            with pytest.raises(ValueError):
                c.publish(topic, payload, qos=1)
        c.publish(b"t/x", b"p" * 65535, qos=1)  # the largest allowed; the link still works
    finally:
        c.disconnect()
    with pytest.raises(ValueError):
        Client("x" * 65536, "127.0.0.1", 1883, None, None, 60, None, None)


def test_nothing_listening_is_an_oserror_at_once():
    c = client(free_port())
    e, ms = timed(c.connect)
    assert isinstance(e, OSError) and e.args[0] == errno.ECONNREFUSED, e
    assert ms < 200 and c.s is None


# -- faults ---------------------------------------------------------------

def test_a_broker_that_closes_after_every_publish_never_acks_a_qos1_publish(broker):
    p = FaultProxy(broker.port)
    p.close_after_publish = True
    c = client(p.port)
    try:
        outcomes, times = [], []
        for i in range(5):
            c.connect()
            e, ms = timed(lambda: c.publish(b"t/hour", b"%d" % i, retain=True, qos=1))
            outcomes.append(e)
            times.append(ms)
        report("QoS 1 publish, broker closes after every PUBLISH: %d of 5 raised, slowest"
               % sum(isinstance(e, OSError) for e in outcomes), max(times))
        assert all(isinstance(e, OSError) for e in outcomes), outcomes
        assert max(times) < TIMEOUT_MS + SLACK_MS
        # QoS 0 into a connection the broker has closed is noticed by the next call.
        c.connect()
        c.publish(b"t/live", b"a")
        time.sleep(0.1)
        with pytest.raises(OSError) as e:
            c.publish(b"t/live", b"b")
        assert e.value.args[0] in (errno.ECONNRESET, errno.EPIPE)
    finally:
        c.disconnect()
        p.close()


def test_a_broker_that_closes_during_connect_is_connection_reset():
    p = FaultProxy(None, close_at_once=True)
    c = client(p.port)
    try:
        e, ms = timed(c.connect)
        assert isinstance(e, OSError) and e.args[0] == errno.ECONNRESET, e
        assert c.s is None
    finally:
        p.close()


def test_no_connack_raises_within_the_timeout():
    p = FaultProxy(None)
    c = client(p.port)
    try:
        e, ms = timed(c.connect)
        report("connect, no CONNACK", ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT, e
        assert TIMEOUT_MS - 20 <= ms <= TIMEOUT_MS + SLACK_MS
        assert p.from_client > 0 and c.s is None  # CONNECT was sent; the socket is closed
    finally:
        p.close()


def test_a_broker_that_stops_answering_pings_is_detected(broker):
    p = FaultProxy(broker.port)
    c = client(p.port)
    try:
        c.connect()
        p.drop_pingresp = True
        t0 = time.monotonic()
        c.ping()
        e = None
        while e is None and time.monotonic() - t0 < 3 * TIMEOUT_MS / 1000:
            time.sleep(TIMEOUT_MS / 4000)
            e, _ = timed(c.ping)  # what the loop does, every keepalive/2 in real life
        ms = (time.monotonic() - t0) * 1000
        report("ping unanswered, noticed by ping()", ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT, e
        assert ms <= 2 * TIMEOUT_MS and p.pingreqs == 1 and c.s is None
        # poll() notices it too, at the first call after timeout_ms.
        c.connect()
        t0 = time.monotonic()
        c.ping()
        e = None
        while e is None and time.monotonic() - t0 < 3 * TIMEOUT_MS / 1000:
            time.sleep(0.01)
            e, _ = timed(c.poll)
        ms = (time.monotonic() - t0) * 1000
        report("ping unanswered, noticed by poll()", ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT, e
        assert TIMEOUT_MS - 20 <= ms <= TIMEOUT_MS + SLACK_MS
    finally:
        c.disconnect()
        p.close()


class Spy:
    """The client's socket, counting writes that would have blocked."""

    def __init__(self, s):
        self.s = s
        self.again = 0
        self.sent = 0

    def send(self, b):
        try:
            n = self.s.send(b)
        except BlockingIOError:
            self.again += 1
            raise
        self.sent += n
        return n

    def __getattr__(self, name):
        return getattr(self.s, name)


def test_a_broker_that_stops_reading_during_a_big_qos1_publish(broker):
    p = FaultProxy(broker.port, rcvbuf=4096)
    c = client(p.port)
    try:
        c.connect()
        # A send buffer the size of lwIP's on the ESP32 (TCP_SND_BUF, about 5.7 KB).
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 5744)
        c.s = spy = Spy(c.s)
        p.stall.set()
        payload = bytes(range(256)) * 250  # 64000 bytes
        e, ms = timed(lambda: c.publish(b"t/big", payload, qos=1))
        report("QoS 1 publish of %d bytes, broker not reading (%d of %d bytes written, "
               "%d writes would have blocked)" % (len(payload), spy.sent, len(payload) + 9,
                                                  spy.again), ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT, e
        assert ms <= TIMEOUT_MS + SLACK_MS
        assert spy.again > 0 and spy.sent < len(payload)  # the writes themselves blocked
        assert c.s is None
    finally:
        p.close()


def test_a_stopped_mosquitto_bounds_publish_and_ping(broker):
    """SIGSTOP: the broker process freezes; the kernel still takes bytes, nothing answers."""
    c = client(broker.port)
    c.connect()
    os.kill(broker.proc.pid, 19)  # SIGSTOP
    try:
        e, ms = timed(lambda: c.publish(b"t/hour", b"x" * 2000, qos=1))
        report("QoS 1 publish, mosquitto stopped", ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT
        assert ms <= TIMEOUT_MS + SLACK_MS
        e, ms = timed(c.connect)
        report("connect, mosquitto stopped", ms)
        assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT
        assert ms <= TIMEOUT_MS + SLACK_MS
    finally:
        os.kill(broker.proc.pid, 18)  # SIGCONT


# -- MicroPython ------------------------------------------------------------------

def test_the_same_packets_and_outcomes_under_micropython_and_cpython(mpy, repo_root):
    cpy = subprocess.run([sys.executable, SESSION], capture_output=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(repo_root / "lib")))
    assert cpy.returncode == 0, describe(cpy)
    mp = mpy(SESSION)
    assert mp.returncode == 0, describe(mp)
    assert mp.stdout == cpy.stdout
    out = cpy.stdout.decode()
    # CONNECT: clean session, will retained QoS 1, user with an empty password field
    assert ("connect no error 10 33 00 04 4d 51 54 54 04 ee 00 3c 00 09 64 6f 6e 67 6c 65 2d c3 b8 "
            "00 0c 68 61 6e 2f 78 2f 73 74 61 74 75 73 00 07 6f 66 66 6c 69 6e 65 "
            "00 03 68 61 6e 00 00") in out
    for line in ("qos0 30 10 00 0b 68 61 6e 2f 78 2f 6c 69 73 74 31 7b 7d 6e",
                 "qos1 33 14 00 0b 68 61 6e 2f 78 2f 6c 69 73 74 33 00 01 54 c3 a5 72 6e",
                 "acked 40 02 00 07 40 02 00 08",  # incoming QoS 1 acknowledged meanwhile
                 "kept 4 newest ha/2 ha/3 ha/4 ha/5",
                 "suback 1", "subscribe 82 19 00 02 00 14 68 6f 6d 65 61 73 73 69 73 74 61 6e 74 2f "
                 "73 74 61 74 75 73 01", "ping c0 00", "pong None", "ping again c0 00",
                 "overdue ETIMEDOUT closed", "refused 5 closed", "reset ECONNRESET closed",
                 "no connack ETIMEDOUT closed in time", "too long ValueError ValueError ValueError",
                 "disconnect e0 00 closed 0", "not connected ENOTCONN",
                 "disconnect on a broken socket closed"):
        assert line in out, out
    assert "s3cret" not in out
