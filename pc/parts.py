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
from pc.capture import shown  # noqa: E402,F401  (the tools import it from here too)
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
    """Frames of a capture: hex text as tools/hexdecode.py reads it (pc.capture) or
    a raw binary stream (split into frames at their HDLC length fields).
    Returns [(label, bytes)]; a raw file gives its stream as one element
    when it has no recognisable frames. A hex file with a line that is not
    hex raises ValueError naming the line: it is never taken for binary."""
    with open(path, "rb") as f:
        data = f.read()
    if capture.looks_binary(data):
        return split_frames(data) or [("stream", data)]
    frames = []
    for c in capture.candidates(capture.split_lines(data)):
        if c.frame is None:
            raise ValueError(c.detail)
        frames.append((c.label, c.frame))
    if not frames:
        raise ValueError("no frames in it")
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
        # fast: ready() false holds bytes back (the loop keeps only the latest live
        # would drop what a fast replay outruns)
        self.ready = ready
        self.frames_sent = 0
        if realtime:
            if first_hour_ms is None:
                first_hour_ms = ms_to_next_hourly()
            self.program = meter_program(frames, first_hour_ms)
            self.unsent = set(id(f) for _, f in frames)  # one pass: every frame sent once
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
        """Fast: every byte handed over. Realtime: every frame sent at least once."""
        if self.realtime:
            return not self.unsent
        return self.pos >= len(self.stream)

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
            self.unsent.discard(id(self.frame))
            if self.on_frame_end:
                self.on_frame_end(self.label, time.monotonic())
            self._next()
        return n

    def _fast(self, buf):
        left = len(self.stream) - self.pos
        if left <= 0 or (self.ready is not None and not self.ready()):
            return None
        n = min(left, len(buf))
        if self.ready is not None and self.ends:
            # Paced: at most up to the end of the next frame, so the loop sees
            # one reading at a time, as it does from a meter.
            n = min(n, self.ends[0][0] - self.pos)
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
    """(host, port) of "HOST", "HOST:PORT" or "[IPv6]:PORT"; ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or (host.count(":") and not host.endswith("]")):
        host, port = text, ""  # no port (or a bare IPv6 address)
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "://" in text:
        raise ValueError("give HOST:PORT without a scheme, e.g. 192.168.1.10:1883, not %s" % shown(text))
    if not host or any(c.isspace() for c in host):
        raise ValueError("%s has no host name: give HOST:PORT, e.g. 192.168.1.10:1883" % shown(text))
    if not port:
        return host, default_port
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("the port in %s must be a number 1..65535" % shown(text))
    return host, int(port)


class UserError(Exception):
    """A mistake in what the user gave: one line for stderr, then exit with .status."""

    def __init__(self, message, status=2):
        Exception.__init__(self, message)
        self.status = status


def read_password(path):
    """The first line of the password file ("" without one); UserError when unreadable."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            line = f.readline()
    except OSError as e:
        raise UserError("cannot read the password file %s: %s" % (shown(path), e.strerror or e), 1)
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError("the password file %s is not UTF-8 text" % shown(path), 1)


def check_state_dir(path):
    """UserError unless path is (or can become) a writable directory."""
    if not path:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError("--state-dir %s is a file, not a directory" % shown(path))
    try:
        os.makedirs(path, exist_ok=True)
    except (OSError, ValueError) as e:
        raise UserError("--state-dir %s cannot be made: %s" % (shown(path), getattr(e, "strerror", None) or e))
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError("--state-dir %s is not writable" % shown(path))


PC_NAME = "hanport-pc"  # the PC twin's device name unless --name or device.name says otherwise


def load_config(path=None, overrides=(), default_name=PC_NAME):
    """The loop's config: the device's config.json (path, optional) with single
    keys overridden, checked by the firmware's own hanport.config.load + check.

    overrides: ((group or None, key, value), ...) for the options actually
    given. Without a device.name anywhere the PC is default_name, so that it
    does not publish under a dongle's topics. Raises UserError listing every
    problem, one per line (status 2).
    """
    import json

    from hanport import config

    user = {}
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UserError("cannot read the config %s: %s" % (shown(path), e.strerror or e))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError("config %s: not UTF-8 at byte %d (save it as UTF-8)" % (shown(path), e.start))
        if text.startswith("\ufeff"):
            text = text[1:]  # a byte order mark (Windows Notepad)
        try:
            user = json.loads(text) if text.strip() else {}
        except (ValueError, RecursionError) as e:
            raise UserError("config %s is not valid JSON: %s" % (shown(path), e))
        if not isinstance(user, dict):
            raise UserError("config %s: the top level must be an object: { ... }" % shown(path))
    for group, key, value in overrides:
        if group is None:
            user[key] = value
        else:
            g = user.get(group)
            if g is None:
                g = user[group] = {}
            if isinstance(g, dict):
                g[key] = value
    dev = user.get("device")
    if dev is None:
        dev = user["device"] = {}
    if isinstance(dev, dict) and "name" not in dev:
        dev["name"] = default_name
    try:
        cfg = config.load(json.dumps(user))
    except ValueError as e:
        raise UserError("config: %s" % e)
    # The PC has no Wi-Fi of its own: a config without an SSID is fine here.
    wifi = cfg.get("wifi")
    placeholder = isinstance(wifi, dict) and not wifi.get("ssid")
    if placeholder:
        wifi["ssid"] = "pc"
    errors = config.check(cfg)
    if placeholder:
        wifi["ssid"] = ""
    if errors:
        where = "config %s" % shown(path) if path else "settings"
        raise UserError("\n".join("%s: %s" % (where, shown(e)) for e in errors))
    return cfg
