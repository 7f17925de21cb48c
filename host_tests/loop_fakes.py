"""Stand-ins for the hardware and the network, for tests and the heap bench.

Portable: runs on CPython and on MicroPython (the WebAssembly port), so the
very same loop can be driven by both and their output compared byte for byte.
Time is simulated: sleep_ms only advances the fake clock.
"""
try:
    from hanport.ports import BrokerRefused
except ImportError:  # CPython running this file directly: lib/ is beside tools/
    import os
    import sys

    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(_root, "lib"))
    sys.path.insert(0, _root)
    from hanport.ports import BrokerRefused

from pc import capture  # the repo root is on the path wherever this file runs
from pc.memstorage import MemStorage  # noqa: F401  (Storage in RAM; tests import it from here)


class FakeClock:
    def __init__(self, start_ms=0, epoch=0):
        self.t = start_ms
        self.epoch = epoch  # Unix seconds at t=0; 0: the clock is not set

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.t += ms

    def time(self):
        return self.epoch + self.t // 1000 if self.epoch else 0


class FrameSource:
    """Hands out frames, one every period_ms of fake time (bytes of frame i
    become readable at i * period_ms), looping over frames `count` times."""

    def __init__(self, clock, frames, period_ms=2500, count=None, start_ms=0):
        self.clock = clock
        self.frames = frames
        self.period_ms = period_ms
        self.count = len(frames) if count is None else count
        self.start_ms = start_ms
        self.i = 0  # frame being sent
        self.pos = 0  # bytes of it already sent
        self.sent = 0  # frames completely sent

    def done(self):
        return self.i >= self.count

    def readinto(self, buf):
        if self.i >= self.count:
            return None
        if self.clock.ticks_diff(self.clock.ticks_ms(), self.start_ms + self.i * self.period_ms) < 0:
            return None
        frame = self.frames[self.i % len(self.frames)]
        n = len(frame) - self.pos
        if n > len(buf):
            n = len(buf)
        p = self.pos
        for k in range(n):  # an index loop allocates nothing on MicroPython
            buf[k] = frame[p + k]
        self.pos += n
        if self.pos >= len(frame):
            self.pos = 0
            self.i += 1
            self.sent += 1
        return n


class FakeClient:
    """Records what the loop publishes. fail_connect: an exception to raise on
    connect; keep=False counts messages without keeping them (heap bench)."""

    def __init__(self, broker, client_id, host, port, user, password, keepalive,
                 will_topic, will_payload):
        self.broker = broker
        self.user = user
        self.password = password
        self.will = (will_topic, will_payload)
        self.connected = False

    def connect(self):
        b = self.broker
        b.attempts += 1
        if b.down:
            raise OSError(111)
        if b.password is not None and self.password != b.password:
            raise BrokerRefused(5)
        self.connected = True

    def publish(self, topic, payload, retain=False, qos=0):
        b = self.broker
        if b.down or not self.connected:
            self.connected = False
            raise OSError(32)
        b.count += 1
        if b.keep:
            b.messages.append((topic, payload, retain))
            b.qos.append(qos)
        if qos and b.lose_acks and topic.endswith(b.lose_on):
            # The broker got it but the PUBACK never comes: the client times out.
            b.lose_acks -= 1
            self.connected = False
            raise OSError(116)

    def subscribe(self, topic, qos=0):
        if self.broker.down or not self.connected:
            raise OSError(32)
        self.broker.subscriptions.append(topic)

    def poll(self):
        b = self.broker
        if b.down or not self.connected:
            self.connected = False
            raise OSError(104)
        return b.inbox.pop(0) if b.inbox else None

    def ping(self):
        if self.broker.down or not self.connected:
            raise OSError(32)
        self.broker.pings += 1

    def disconnect(self):
        self.connected = False

    def close(self):
        self.connected = False


class FakeBroker:
    def __init__(self, password=None, keep=True):
        self.password = password
        self.keep = keep
        self.down = False
        self.attempts = 0
        self.count = 0
        self.pings = 0
        self.messages = []  # (topic, payload, retain) in the order published
        self.qos = []  # the QoS of each of messages
        self.subscriptions = []
        self.inbox = []  # (topic, payload) the broker will deliver to the client
        self.lose_acks = 0  # this many QoS 1 publishes arrive but their PUBACK is lost
        self.lose_on = b""  # ... of topics that end with this

    def factory(self, client_id, host, port, user, password, keepalive, will_topic, will_payload):
        return FakeClient(self, client_id, host, port, user, password, keepalive,
                          will_topic, will_payload)


class UpLink:
    def poll(self):
        return True

    def state(self):
        return "up"

    def rssi(self):
        return -60


class NoWatchdog:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class FakeSystem:
    def free_heap(self):
        return 100000

    def largest_free_block(self):
        return 40960

    def reset_cause(self):
        return "power_on"


def config(name="test", raw=False, diag_interval_s=60, password="secret"):
    return {
        "device": {"name": name},
        "mqtt": {"host": "broker.test", "port": 1883, "user": "han", "password": password,
                 "client_id": "", "keepalive": 60, "base_topic": "", "raw_frames": raw},
        "diag_interval_s": diag_interval_s,
    }


def read_hex(path):
    """The frames of a hex capture file (see capture.py), without their labels."""
    return [frame for _, frame in capture.read_hex(path)]


def transcript(frames, period_ms=2500, raw=False, count=None, trouble=False):
    """Run the loop over frames with fakes; return the published messages as
    text lines "topic retain payload". trouble: the broker refuses the password
    for the first 10 s, is down from 10 s to 40 s, then works (deterministic
    jitter, so both interpreters must agree on every byte, diag included)."""
    from hanport.app import run

    clock = FakeClock(start_ms=1000, epoch=1700000000)
    src = FrameSource(clock, frames, period_ms, count)
    broker = FakeBroker(password="secret")
    end_ms = 1000 + 100 + (60000 if trouble else 0)

    def stop(app):
        app.session.backoff.rand = _half
        if trouble:
            broker.password = "other" if clock.t < 11000 else "secret"
            broker.down = 11000 <= clock.t < 41000
        return src.done() and not len(app.outbox) and clock.t > end_ms

    run(src, clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
        config(raw=raw, diag_interval_s=10), stop=stop, log=_quiet)
    lines = []
    for topic, payload, retain in broker.messages:
        lines.append(topic.decode() + " " + str(int(retain)) + " " + payload.decode())
    return lines


def _half(n):
    return n // 2


def _quiet(s):
    pass


def main(argv):
    """loop_fakes.py CAPTURE.hex [raw] [trouble]: print the transcript (used to compare
    MicroPython with CPython)."""
    frames = read_hex(argv[1])
    opts = argv[2:]
    for line in transcript(frames, raw="raw" in opts, trouble="trouble" in opts,
                           count=len(frames) * 3 if "trouble" in opts else None):
        print(line)


if __name__ == "__main__":
    import sys

    main(sys.argv)
