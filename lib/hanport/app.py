"""The main loop: meter bytes in, MQTT messages out. The same on the ESP32 and a PC.

Everything outside arrives as parameters (see hanport.ports), so the loop
runs on the device, on the PC twin, and in tests with fakes.

Timing bound: the only blocking calls are the client's connect / publish /
ping, each bounded by the client's socket timeout (keep it <= 10 s). One
iteration makes at most one call that can time out (a timeout ends the
connection), and the byte source is drained between publishes. The ESP32's
UART rxbuf of 4096 bytes holds 18 s at 2400 baud (about 218 bytes/s), so no
meter byte is lost while the broker misbehaves. The watchdog timeout must
exceed the client's timeout.
"""
from hanport import diag
from hanport.backoff import Backoff
from hanport.decode import Decoder
from hanport.hdlc import Deframer
from hanport.outbox import HOURLY, LIVE, RAW, Outbox
from hanport.ports import BrokerRefused
from hanport.publish import base_topic, raw_payload, reading_payload, reading_topic

CHUNK = 256  # bytes per source read
MAX_READS = 16  # reads per drain: 16 x 256 = 4096 bytes, a whole rxbuf
MAX_PUBLISH = 8  # queued messages sent per iteration
IDLE_MS = 10  # sleep when there is nothing to do: bounds the added latency
FRAME_GAP_MS = 1000  # a line idle this long inside a frame: the rest never comes
STABLE_MS = 30000  # a connection that lasted this long resets the backoff
LAST_LIST3 = "last_list3"  # storage name of the last List 3 payload
LAST_CRASH = "last_crash"  # written by the device's main.py before it resets


class App:
    def __init__(self, source, clock, link, client_factory, storage, watchdog,
                 system, config, log=None):
        self.source = source
        self.clock = clock
        self.link = link
        self.client_factory = client_factory
        self.storage = storage
        self.watchdog = watchdog
        self.system = system
        self.log = log or _print

        m = config["mqtt"]
        self.host = m.get("host")
        self.port = m.get("port") or 1883
        self.user = m.get("user") or None
        self.password = m.get("password") or None  # never logged or published
        self.client_id = m.get("client_id") or config["device"]["name"] or "hanport"
        self.keepalive_s = m.get("keepalive") or 0
        self.raw = bool(m.get("raw_frames"))
        self.diag_ms = (config.get("diag_interval_s") or 60) * 1000

        base = base_topic(config)
        self.base = base
        self.t_status = (base + "/status").encode()
        self.t_diag = (base + "/diag").encode()
        self.t_raw = (base + "/raw").encode()
        self.t_list3 = (base + "/list3").encode()
        self.topics = {}  # list number -> topic bytes, built once
        for n in (1, 2, 3, None):
            self.topics[n] = reading_topic(base, _ListNo(n)).encode()

        self.outbox = Outbox()
        self.backoff = Backoff()
        self.decoder = Decoder()
        self.deframer = Deframer(self._frame)
        self.buf = bytearray(CHUNK)

        self.client = None
        self.mqtt_state = "starting"
        self.connects = 0
        self.connect_failures = 0
        self.disconnects = 0
        self.last_connect_error = None
        self.published = 0
        self.readings = 0
        self.bytes_in = 0
        self.errors = {"source": 0, "storage": 0, "internal": 0}
        self.reset_cause = system.reset_cause()

        now = clock.ticks_ms()
        self.prev = now
        self.rem_ms = 0
        self.up_s = 0
        self.last_byte_s = None
        self.last_frame_s = None
        self.last_byte_t = now
        self.frame_open = False  # bytes fed since the line was last idle
        self.connected_t = now
        self.tx_t = now
        self.diag_t = now
        self.diag_now = False
        self.meter = "waiting"

        self.last_list3 = None
        self.last_crash = None
        try:
            self.last_list3 = storage.read(LAST_LIST3)
            self.last_crash = _last_line(storage.read(LAST_CRASH))
            if self.last_crash:
                storage.write(LAST_CRASH, b"")  # report each crash on one boot only
        except Exception:
            self.errors["storage"] += 1
        # After a reboot the broker may have lost the retained List 3 and the
        # next one is up to an hour away: republish the kept one once.
        self.republish = self.last_list3 is not None

    # -- one iteration ---------------------------------------------------

    def step(self):
        clock = self.clock
        now = clock.ticks_ms()
        self._tick(now)
        self.watchdog.feed()
        got = self._drain(now)
        if self.client is None:
            self._connect(now)
        else:
            self._service(now)
        if not got and (self.client is None or not len(self.outbox)):
            clock.sleep_ms(IDLE_MS)

    def _tick(self, now):
        # Uptime kept in seconds: ticks_diff is only valid for short spans.
        d = self.clock.ticks_diff(now, self.prev)
        self.prev = now
        if d > 0:
            self.rem_ms += d
            if self.rem_ms >= 1000:
                self.up_s += self.rem_ms // 1000
                self.rem_ms %= 1000
                self._check_meter()
                self._check_link(now)

    def _check_link(self, now):
        # Once a second while connected: a dropped Wi-Fi ends the session at
        # once instead of waiting for a publish to fail (QoS 0 writes into a
        # dead link can succeed for a while).
        if self.client is not None and not self.link.poll():
            self._lost("network_down", now)

    def _check_meter(self):
        state, quiet, msg = diag.meter_state(self.up_s, self.last_byte_s, self.last_frame_s)
        if state != self.meter:
            self.meter = state
            self.log("meter: " + (msg or state))

    # -- bytes in --------------------------------------------------------

    def _drain(self, now):
        buf = self.buf
        got = 0
        for _ in range(MAX_READS):
            try:
                n = self.source.readinto(buf)
            except Exception:
                self.errors["source"] += 1
                n = 0
            if not n:
                break
            got += n
            self.deframer.feed(buf, n)
            if n < len(buf):
                break
        if got:
            self.bytes_in += got
            self.last_byte_s = self.up_s
            self.last_byte_t = now
            self.frame_open = True
        elif self.frame_open and self.clock.ticks_diff(now, self.last_byte_t) >= FRAME_GAP_MS:
            self.frame_open = False
            self.deframer.end()  # counts a frame cut short (a loose adapter)
        return got

    def _frame(self, apdu, frame):
        # Called by the deframer for each good frame; apdu and frame are only
        # valid during the call.
        try:
            r = self.decoder.decode(apdu)
            if r is not None:
                self.readings += 1
                self.last_frame_s = self.up_s
                payload = reading_payload(r, self.clock.time())
                if r.list == 3:
                    self.outbox.put(self.t_list3, payload, True, HOURLY)
                    self._keep_list3(payload)
                else:
                    self.outbox.put(self.topics.get(r.list, self.topics[None]), payload, False, LIVE)
            if self.raw:
                self.outbox.put(self.t_raw, raw_payload(frame), False, RAW)
        except Exception as e:
            self.errors["internal"] += 1
            self.log("frame: " + diag.error_text(e))

    def _keep_list3(self, payload):
        self.last_list3 = payload
        self.republish = False
        try:
            self.storage.write(LAST_LIST3, payload)
        except Exception:
            self.errors["storage"] += 1

    # -- the broker ------------------------------------------------------

    def _connect(self, now):
        diff = self.clock.ticks_diff
        if not self.link.poll():
            self.mqtt_state = "no_network"
            return
        if not self.backoff.ready(now, diff):
            return
        self.mqtt_state = "connecting"
        client = None
        try:
            client = self.client_factory(
                self.client_id, self.host, self.port, self.user, self.password,
                self.keepalive_s, self.t_status, b"offline")
            client.connect()
            client.publish(self.t_status, b"online", True)
        except BrokerRefused as e:
            self._failed(client, refused_name(e), now)
            return
        except Exception as e:  # OSError; umqtt raises IndexError on a closed socket
            self._failed(client, diag.error_text(e), now)
            return
        now = self.clock.ticks_ms()  # connect may have taken seconds
        self.watchdog.feed()
        self.client = client
        self.connects += 1
        self.mqtt_state = "connected"
        self.connected_t = now
        self.tx_t = now
        self.diag_t = now
        self.diag_now = True  # tell the new session how things are at once
        self.log("mqtt: connected to {}:{} as {}".format(self.host, self.port, self.client_id))
        if self.republish and self.last_list3:
            self.outbox.put(self.t_list3, self.last_list3, True, HOURLY)
            self.republish = False

    def _failed(self, client, why, now):
        if client is not None:
            _quiet_disconnect(client)
        self.connect_failures += 1
        self.last_connect_error = why
        self.mqtt_state = why
        self.backoff.failed(now)
        self.log("mqtt: connect to {}:{} failed: {}; retry in {} ms".format(
            self.host, self.port, why, self.backoff.delay_ms))

    def _service(self, now):
        diff = self.clock.ticks_diff
        client = self.client
        try:
            for _ in range(MAX_PUBLISH):
                m = self.outbox.peek()
                if m is None:
                    break
                client.publish(m[0], m[1], m[2])
                self.outbox.pop()
                self.published += 1
                self.tx_t = now
                self._drain(now)  # keep the UART drained between publishes
            if self.diag_now or diff(now, self.diag_t) >= self.diag_ms:
                self.diag_t = now
                self.diag_now = False
                client.publish(self.t_diag, diag.payload(self))
                self.tx_t = now
            elif self.keepalive_s and diff(now, self.tx_t) >= self.keepalive_s * 500:
                client.ping()  # umqtt never pings by itself
                self.tx_t = now
        except Exception as e:
            self._lost(diag.error_text(e), now)
            return
        if self.backoff.failures and diff(now, self.connected_t) >= STABLE_MS:
            self.backoff.succeeded()

    def _lost(self, why, now):
        _quiet_disconnect(self.client)
        self.client = None
        self.disconnects += 1
        self.mqtt_state = "lost: " + why
        self.backoff.failed(now)
        self.log("mqtt: connection lost: {}; retry in {} ms".format(why, self.backoff.delay_ms))

    def close(self):
        """Say offline (the will covers crashes) and disconnect."""
        if self.client is not None:
            try:
                self.client.publish(self.t_status, b"offline", True)
            except Exception:
                pass
            _quiet_disconnect(self.client)
            self.client = None
            self.mqtt_state = "closed"


def refused_name(e):
    return diag.refused_text(e.args[0] if e.args else None)


def run(source, clock, link, client_factory, storage, watchdog, system, config,
        stop=None, log=None):
    """Run the loop until stop(app) is true (never, on the device). Returns the App."""
    app = App(source, clock, link, client_factory, storage, watchdog, system, config, log)
    try:
        while stop is None or not stop(app):
            app.step()
    finally:
        app.close()
    return app


class _ListNo:
    # Stands for a reading when only its list number matters (topic names).
    def __init__(self, n):
        self.list = n


def _last_line(text):
    """The exception line of a stored traceback, at most 160 characters."""
    if not text:
        return None
    lines = text.decode().strip().split("\n")
    return lines[-1][:160] if lines[-1] else None


def _quiet_disconnect(client):
    try:
        client.disconnect()
    except Exception:
        pass  # the socket is already gone: nothing left to close


def _print(s):
    print(s)
