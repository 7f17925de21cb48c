"""The PC's parts for hanport.app.run: clock, link, storage, MQTT client, byte sources.

CPython only. The loop is the firmware's own; only what the ESP32 gets from
machine/network is replaced here (see lib/hanport/ports.py for the shapes).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if os.path.join(ROOT, "lib") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "lib"))

from firmware.storage import FlashStorage  # noqa: E402  (plain os calls: runs on CPython)
from pc import capture  # noqa: E402
from pc.memstorage import MemStorage  # noqa: E402

BAUD = 2400
BITS_PER_BYTE = 11  # start + 8 data + parity + stop (8E1)
SLOT_MS = 2500  # Aidon pushes a list every 2.5 s
LIST2_EVERY = 4  # every 4th slot carries List 2 instead of List 1 (10 s)
HOURLY_AT_S = 10  # Aidon sends List 3 at about XX:00:10


# -- machine ----------------------------------------------------------------

class PcClock:
    def ticks_ms(self):
        return int(time.monotonic() * 1000)

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        time.sleep(ms / 1000)

    def time(self):
        return int(time.time())


class PcLink:
    """A PC's network is up or the OS deals with it."""

    def poll(self):
        return True

    def state(self):
        return "pc"

    def rssi(self):
        return None


def PcStorage(directory=None):
    """Storage for the PC twin: the firmware's own FlashStorage on a directory
    (--state-dir; created with its parents), in RAM when directory is None."""
    if not directory:
        return MemStorage()
    os.makedirs(directory, exist_ok=True)
    return FlashStorage(directory)


class PcWatchdog:
    def feed(self):
        pass


class PcSystem:
    def free_heap(self):
        return None  # meaningless on a PC

    def largest_free_block(self):
        return None

    def reset_cause(self):
        return "pc_start"


# -- MQTT -------------------------------------------------------------------

def mqtt_factory(timeout_ms=10000):
    """client_factory for hanport.app: the firmware's own MQTT client (hanport.mqtt)."""
    from hanport.mqtt import Client

    def factory(client_id, host, port, user, password, keepalive, will_topic, will_payload):
        return Client(client_id, host, port, user, password, keepalive, will_topic,
                      will_payload, timeout_ms)
    return factory


# -- byte sources -----------------------------------------------------------

class SerialSource:
    """A USB serial adapter on the HAN port's M-Bus transceiver."""

    PARITY = {"E": "E", "N": "N", "O": "O"}

    def __init__(self, port, baud=BAUD, parity="E"):
        import serial

        self.s = serial.Serial(port, baud, bytesize=8, parity=self.PARITY[parity.upper()],
                               stopbits=1, timeout=0)  # timeout 0: never blocks

    def readinto(self, buf):
        waiting = self.s.in_waiting
        if not waiting:
            return None
        return self.s.readinto(memoryview(buf)[:min(waiting, len(buf))])

    def close(self):
        self.s.close()


def read_capture(path):
    """Frames of a capture: hex lines ("label<TAB>hex" or "hex", '#' comments) or
    a raw binary stream (split into frames at their HDLC length fields).
    Returns [(label, bytes)]; a raw file gives its stream as one element
    when it has no recognisable frames."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("ascii")
        frames = _hex_lines(text)
        if frames:
            return frames
    except (UnicodeDecodeError, ValueError):
        pass
    return split_frames(data) or [("stream", data)]


def _hex_lines(text):
    frames = list(capture.hex_lines(text.splitlines()))
    if any(frame is None for _, frame in frames):
        raise ValueError("not a hex capture")
    return frames


def split_frames(data):
    """Cut a raw capture at frame boundaries (good frames only) with the firmware's deframer."""
    from hanport.hdlc import Deframer

    out = []
    d = Deframer(lambda apdu, frame: out.append(("frame{}".format(len(out)), bytes(frame))))
    d.feed(data, len(data))
    d.end()
    return out


def list_of(frame):
    """Which list a frame carries (1, 2, 3) or None if it does not decode."""
    from hanport.decode import Decoder
    from hanport.hdlc import Deframer

    got = []
    dec = Decoder()
    d = Deframer(lambda apdu, fr: got.append(dec.decode(apdu)))
    d.feed(frame, len(frame))
    d.end()
    return got[0].list if got and got[0] is not None else None


def meter_program(frames, first_hour_ms):
    """Endless (time_ms, label, frame) as an Aidon meter sends them: a slot every
    2.5 s with List 1, List 2 in every 4th slot, List 3 in the first List 2
    slot after each hour (first one first_hour_ms from the start; then hourly).
    Frames that do not decode (damaged captures) take a List 1 slot every
    40 slots (100 s). Each kind cycles through its frames in file order."""
    kinds = {1: [], 2: [], 3: [], None: []}
    for label, frame in frames:
        kinds.get(list_of(frame), kinds[None]).append((label, frame))
    if not kinds[2] and kinds[3]:
        kinds[2] = kinds[3]  # a corpus of hourly lists only: send them every 10 s
    nxt = {1: 0, 2: 0, 3: 0, None: 0}
    hour_ms = first_hour_ms
    k = 0
    while True:
        t = k * SLOT_MS
        kind = None
        if k % LIST2_EVERY == LIST2_EVERY - 1:
            if kinds[3] and t >= hour_ms:
                kind = 3
                while hour_ms <= t:
                    hour_ms += 3600 * 1000
            elif kinds[2]:
                kind = 2
        elif kinds[None] and k % 40 == 20:
            kind = None
        elif kinds[1]:
            kind = 1
        else:
            kind = "skip"
        if kind != "skip" and kinds[kind]:
            group = kinds[kind]
            label, frame = group[nxt[kind] % len(group)]
            nxt[kind] += 1
            yield t, label, frame
        k += 1


def ms_to_next_hourly(now=None):
    """From now to the next XX:00:10 local time, in ms: when a real Aidon sends List 3."""
    now = time.time() if now is None else now
    lt = time.localtime(now)
    into_hour = lt.tm_min * 60 + lt.tm_sec + (now % 1)
    left = HOURLY_AT_S - into_hour
    if left < 0:
        left += 3600
    return int(left * 1000)


class ReplaySource:
    """Replays a capture.

    fast: the frames back to back, as fast as the loop reads (ends when done).
    realtime: the meter's schedule (meter_program) with bytes paced at 2400
    baud, 11 bits a byte; runs until stopped. on_frame_end(label, t) is called
    when the last byte of a frame is handed to the loop (latency bench).
    """

    def __init__(self, frames, realtime=False, first_hour_ms=None, on_frame_end=None,
                 start_delay_ms=500, ready=None):
        self.realtime = realtime
        self.on_frame_end = on_frame_end
        # fast: ready() false holds bytes back (the loop's outbox is bounded and
        # would drop what a fast replay outruns)
        self.ready = ready
        self.frames_sent = 0
        if realtime:
            if first_hour_ms is None:
                first_hour_ms = ms_to_next_hourly()
            self.program = meter_program(frames, first_hour_ms)
            self.t0 = time.monotonic() + start_delay_ms / 1000
            self._next()
        else:
            self.stream = b"".join(f for _, f in frames)
            self.ends = []
            total = 0
            for label, f in frames:
                total += len(f)
                self.ends.append((total, label))
            self.pos = 0

    def done(self):
        return not self.realtime and self.pos >= len(self.stream)

    def _next(self):
        t, self.label, self.frame = next(self.program)
        self.frame_t = self.t0 + t / 1000
        self.pos = 0

    def readinto(self, buf):
        if not self.realtime:
            return self._fast(buf)
        now = time.monotonic()
        if now < self.frame_t:
            return None
        due = int((now - self.frame_t) * BAUD / BITS_PER_BYTE) + 1
        n = min(due, len(self.frame)) - self.pos
        if n <= 0:
            return None
        n = min(n, len(buf))
        buf[:n] = self.frame[self.pos:self.pos + n]
        self.pos += n
        if self.pos >= len(self.frame):
            self.frames_sent += 1
            if self.on_frame_end:
                self.on_frame_end(self.label, time.monotonic())
            self._next()
        return n

    def _fast(self, buf):
        left = len(self.stream) - self.pos
        if left <= 0 or (self.ready is not None and not self.ready()):
            return None
        n = min(left, len(buf))
        buf[:n] = self.stream[self.pos:self.pos + n]
        self.pos += n
        while self.ends and self.ends[0][0] <= self.pos:
            self.frames_sent += 1
            label = self.ends.pop(0)[1]
            if self.on_frame_end:
                self.on_frame_end(label, time.monotonic())
        return n


def make_config(broker_host, broker_port, name="hanport-pc", user="", password="",
                base_topic="", raw_frames=False, diag_interval_s=60, keepalive=60):
    """A config dict for the loop, through the firmware's own defaults and derivations."""
    import json

    from hanport import config

    return config.load(json.dumps({
        "device": {"name": name},
        "mqtt": {"host": broker_host, "port": broker_port, "user": user, "password": password,
                 "base_topic": base_topic, "raw_frames": raw_frames, "keepalive": keepalive},
        "diag_interval_s": diag_interval_s,
    }))


def parse_hostport(text, default_port=1883):
    host, _, port = text.rpartition(":")
    if not host:
        return text, default_port
    return host, int(port)
