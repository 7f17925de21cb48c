"""The main loop: meter bytes in, MQTT messages out. The same on the ESP32 and a PC.

Everything outside arrives as parameters (see hanport.ports), so the loop
runs on the device, on the PC twin, and in tests with fakes. Each concern is
a module with a small interface the loop calls: the deframer and decoder
(bytes -> readings), energy (a reading arrives -> hours and totals),
discovery (Home Assistant configs, paced), the outbox with its durable queue
(what waits for the broker) and the session (the broker connection).

Timing bound: every client call (connect, publish, subscribe, ping) is
bounded by one deadline of the client's timeout (10 s on the device). The
loop feeds the watchdog and drains the meter between calls and stops
publishing for this turn after TURN_MS, so the UART's 4096-byte rxbuf (18 s
at 2400 baud) never overflows while the broker misbehaves.
"""
from hanport import VERSION, diag
from hanport.decode import Decoder
from hanport.energy import Energy
from hanport.flashqueue import FlashQueue
from hanport.hdlc import Deframer
from hanport.outbox import LIVE, Outbox, RamQueue
from hanport.publish import PayloadTooBig, base_topic, raw_payload, reading_payload
from hanport.session import Session

CHUNK = 256  # bytes per source read
MAX_READS = 16  # reads per drain: 16 x 256 = 4096 bytes, a whole rxbuf
MAX_PUBLISH = 4  # queued messages per iteration (with 8, the turn draining a backlog was the heap peak)
TURN_MS = 1000  # no further publish in this turn once it has taken this long
IDLE_MS = 10  # sleep when there is nothing to do: bounds the added latency
FRAME_GAP_MS = 1000  # a line idle this long inside a frame: the rest never comes
ENERGY_EVERY_S = 60  # <base>/energy at least this often (and after each List 3)
ENERGY_STATE = "energy"  # storage name of the energy accounting state
LAST_CRASH = "last_crash"  # written by the device's main.py before it resets
STEPS_KWH = (2, 5, 10, 15, 20, 25, 50, 75, 100)  # the common Norwegian capacity steps


class App:
    def __init__(self, source, clock, link, client_factory, storage, watchdog,
                 system, config, log=None):
        self.source = source
        self.clock = clock
        self.link = link
        self.storage = storage
        self.watchdog = watchdog
        self.system = system
        self.log = log or _print
        self.raw = bool(config["mqtt"].get("raw_frames"))
        self.language = config.get("language") or "en"  # of the diag messages
        self.diag_ms = (config.get("diag_interval_s") or 60) * 1000

        # Long-lived buffers first, while the heap is still in one piece.
        self.buf = bytearray(CHUNK)
        self.deframer = Deframer(self._frame)
        self.decoder = Decoder()

        base = base_topic(config)
        self.base = base
        self.t_diag = (base + "/diag").encode()
        self.t_raw = (base + "/raw").encode()
        self.t_hour = (base + "/hour").encode()
        self.t_energy = (base + "/energy").encode()
        self.t_lists = ((base + "/reading").encode(), (base + "/list1").encode(),
                        (base + "/list2").encode(), (base + "/list3").encode())

        self.errors = {"source": 0, "storage": 0, "internal": 0, "too_big": 0}
        try:
            durable = FlashQueue(storage)
        except Exception as e:  # the file system is broken: keep going, say so
            self.errors["storage"] += 1
            self.log("storage: no queue on flash (" + diag.error_text(e) + "); hourly data is kept in RAM only")
            durable = RamQueue()
        self.outbox = Outbox(durable)
        self.session = Session(clock, link, client_factory, config, base, self.log, watchdog)
        self.energy = Energy(tuple((config.get("tariff") or {}).get("steps_kwh") or STEPS_KWH),
                             log=self.log)
        ha = config.get("ha") or {}
        self.discovery = None
        if ha.get("discovery", True):
            from hanport.discovery import Discovery
            self.discovery = Discovery(ha.get("prefix") or "homeassistant", base,
                                       config["device"]["name"] or "hanport", VERSION,
                                       diag_interval_s=self.diag_ms // 1000)

        self.published = 0  # acknowledged by the broker (QoS 1)
        self.sent = 0  # handed to the network (QoS 0)
        self.readings = 0
        self.bytes_in = 0
        self.reset_cause = system.reset_cause()

        now = clock.ticks_ms()
        self.now = now
        self.prev = now
        self.rem_ms = 0
        self.up_s = 0
        self.last_byte_s = None
        self.last_frame_s = None
        self.last_byte_t = now
        self.frame_open = False  # bytes fed since the line was last idle
        self.diag_t = now
        self.diag_now = False
        self.energy_s = 0
        self.meter = "waiting"

        self.last_crash = None
        try:
            state = storage.read(ENERGY_STATE)
            if state and not self.energy.restore(state):
                self.log("energy: the kept state was unreadable; starting afresh")
            self.last_crash = _last_line(storage.read(LAST_CRASH))
            if self.last_crash:
                storage.write(LAST_CRASH, b"")  # report each crash on one boot only
        except Exception:
            self.errors["storage"] += 1

    # -- one iteration ---------------------------------------------------

    def step(self):
        now = self.clock.ticks_ms()
        self.now = now
        self._tick(now)
        self.watchdog.feed()
        got = self._drain(now)
        if self.session.client is None:
            status = self.discovery.status_topic if self.discovery else None
            if self.session.connect(now, status):
                self._connected(now)
            self.watchdog.feed()
        elif not self.link.poll():
            # The Wi-Fi dropped: end the session now. A publish into the dead
            # link would only wait out the client's deadline (10 s), and so
            # would a DISCONNECT, whose reply cannot come: just close.
            self.session.lost("network_down", gone=True)
        else:
            self._service(now)
        if not got and (self.session.client is None or not len(self.outbox)):
            self.clock.sleep_ms(IDLE_MS)

    def _tick(self, now):
        # Uptime kept in seconds: ticks_diff is only valid for short spans.
        d = self.clock.ticks_diff(now, self.prev)
        self.prev = now
        if d > 0:
            self.rem_ms += d
            if self.rem_ms >= 1000:
                self.up_s += self.rem_ms // 1000
                self.rem_ms %= 1000
                self._every_second(now)

    def _every_second(self, now):
        state, quiet, msg = diag.meter_state(self.up_s, self.last_byte_s, self.last_frame_s,
                                             self.decoder.errors["encrypted"], self.language)
        if state != self.meter:
            self.meter = state
            self.log("meter: " + (msg or state))
        if self.up_s - self.energy_s >= ENERGY_EVERY_S:
            self._energy_update()

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
                self._reading(r)
            if self.raw:
                self.outbox.put_live(self.t_raw, raw_payload(frame))
        except Exception as e:
            self.errors["internal"] += 1
            self.log("frame: " + diag.error_text(e))

    def _reading(self, r):
        self.readings += 1
        self.last_frame_s = self.up_s
        try:
            payload = reading_payload(r, self.clock.time())
        except PayloadTooBig:  # a crafted frame: counted, not published
            self.errors["too_big"] += 1
            payload = None
        topic = self.t_lists[r.list or 0]
        if payload is None:
            pass
        elif r.list == 3:
            self._billing(topic, payload)
        else:
            self.outbox.put_live(topic, payload)
        if self.discovery is not None:
            self.discovery.on_reading(r)
        for hour in self.energy.on_reading(r, self.now):
            self._billing(self.t_hour, hour)
        if self.energy.changed:
            self.energy.changed = False
            try:
                self.storage.write(ENERGY_STATE, self.energy.dump())
            except Exception:
                self.errors["storage"] += 1
            self._energy_update()

    def _billing(self, topic, payload):
        try:
            self.outbox.put_billing(topic, payload)
        except Exception:
            # Flash failed: still send it (latest value, acknowledged), and say so.
            self.errors["storage"] += 1
            self.outbox.put_state(topic, payload)
            self.log("storage: could not queue " + topic.decode() + " on flash")

    def _energy_update(self):
        self.energy_s = self.up_s
        p = self.energy.payload(self.now)
        if p is not None:
            self.outbox.put_state(self.t_energy, p)
            if self.discovery is not None:
                self.discovery.on_energy()

    # -- the broker ------------------------------------------------------

    def _connected(self, now):
        self.diag_t = now
        self.diag_now = True  # tell the new session how things are at once
        if self.discovery is not None:
            self.discovery.reannounce()
        self._energy_update()

    def _service(self, now):
        s = self.session
        diff = self.clock.ticks_diff
        try:
            m = s.poll()
            d = self.discovery
            if m is not None and d is not None and m[0] == d.status_topic and m[1] == b"online":
                d.reannounce()  # Home Assistant restarted: it may have lost the configs
            for _ in range(MAX_PUBLISH):
                m = self.outbox.next()
                if m is None:
                    break
                live = m[2] == LIVE
                s.publish(m[0], m[1], not live, 0 if live else 1)
                self.outbox.done(m)
                if live:
                    self.sent += 1
                else:
                    self.published += 1
                self.watchdog.feed()
                self._drain(now)  # keep the UART drained between publishes
                if diff(self.clock.ticks_ms(), now) >= TURN_MS:
                    break
            if d is not None:
                m = d.next(now, diff)
                if m is not None:
                    s.publish(m[0], m[1], True, 1)
                    self.published += 1
            if self.diag_now or diff(now, self.diag_t) >= self.diag_ms:
                self.diag_t = now
                self.diag_now = False
                s.publish(self.t_diag, diag.payload(self))
                self.sent += 1
                if d is not None:
                    d.on_diag()
            s.keepalive(now)
        except Exception as e:
            s.lost(diag.error_text(e))

    def close(self):
        self.session.close()


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


def _last_line(text):
    """The exception line of a stored traceback, at most 160 characters."""
    if not text:
        return None
    lines = text.decode().strip().split("\n")
    return lines[-1][:160] if lines[-1] else None


def _print(s):
    print(s)
