"""Home Assistant MQTT discovery: one retained config message per value, paced.

    d = Discovery(prefix, base_topic, node_id, sw_version)  # url=None, diag_interval_s=60
    d.on_reading(reading)   # each decoded reading: learns the meter and its values
    d.on_energy()           # <base>/energy was published: announce its values
    d.on_diag()             # <base>/diag was published: announce the diagnostics
    d.reannounce()          # "online" on d.status_topic, or the broker reconnected
    d.next(now_ms, ticks_diff) -> (topic, payload) bytes or None
                            # publish it retained, QoS 1; one per PACE_MS at most

Two devices appear in Home Assistant: the meter (make, type, meter id) with
one sensor per value it actually sends plus the energy figures of
<base>/energy, and the dongle itself with its diagnostics, so that a HAN port
that is still closed ("meter: silent") shows in Home Assistant before any
meter data has come. The meter names the dongle as its via_device.

Nothing is kept per message: the state is a few bytearrays (where each
value was first seen, what is still to be announced), and a payload is built
only when next() hands it out, with Home Assistant's key abbreviations and
"~" for the base topic (about 460 bytes a message instead of 700). The
builder and its tables live in hanport.discovery_msg, imported by next()
while something is to be announced and forgotten once nothing is: announcing
happens at start-up and after a reconnection, so most of the time only this
small part takes heap. One message per PACE_MS at most: a dongle powered
from the meter browns out on bursts of Wi-Fi transmission.

Facts from Home Assistant (cited where they are used; host_tests/
test_discovery.py checks every payload against them): discovery topic
<prefix>/<component>/[<node_id>/]<object_id>/config with node_id and object_id
of [a-zA-Z0-9_-] (homeassistant/components/mqtt/discovery.py, TOPIC_MATCHER);
units and state classes allowed per device class
(homeassistant/components/sensor/const.py, DEVICE_CLASS_UNITS and
DEVICE_CLASS_STATE_CLASSES); `default_entity_id` replaced `object_id` in
2025.10 (object_id stops working in 2026.4), older releases ignore it.
"""
import sys

from hanport.fields import listed, lookup

PACE_MS = 1000  # at most one config message a second
LIVE_S = 300  # expire_after for List 1/2 values (pushed every 2-10 s)
HOURLY_S = 4500  # List 3 and <base>/energy: hourly, plus 15 min for a late push

# The list fields' units that make a sensor (kinds 0-5 of hanport.discovery_msg).
LIST_UNITS = ("W", "var", "A", "V", "Wh", "varh")
# How many <base>/energy and <base>/diag values there are (discovery_msg._EXTRA).
N_ENERGY = 10
N_DIAG = 8

# Where a value was first seen (the `where` bytes): list 1-3, then these; a
# smaller list number wins because it is pushed more often.
READING, ENERGY_T, DIAG_T = 4, 5, 6

_BUILDER = "hanport.discovery_msg"


def _forget_builder():
    """Drop the message builder from sys.modules and from the hanport package,
    so that the collector frees its code and tables (next() imports it again)."""
    mod = sys.modules.pop(_BUILDER, None)
    if mod is not None:
        pkg = sys.modules.get("hanport")
        if pkg is not None and getattr(pkg, "discovery_msg", None) is mod:
            delattr(pkg, "discovery_msg")


class Discovery:
    def __init__(self, prefix, base_topic, node_id, sw_version, url=None,
                 diag_interval_s=60, pace_ms=PACE_MS):
        self.prefix = prefix
        self.base_topic = base_topic
        self.name = node_id
        self.sw = sw_version
        self.url = url  # the dongle's web page; reannounce() after setting it
        self.pace_ms = pace_ms
        self.diag_s = 3 * diag_interval_s  # three missed diag messages: stale
        self.status_topic = (prefix + "/status").encode()
        # Numeric list fields named by hanport.fields (same names as the payloads).
        self._fields = tuple(e for e in listed() if e[1] in LIST_UNITS)
        self._n = len(self._fields)
        n = self._n + N_ENERGY + N_DIAG
        self._where = bytearray(n)  # where each value was first seen (0: not yet)
        self._todo = bytearray(n)  # 1: to be announced
        # Per list (1-3, 4: other layouts): how many items its readings had
        # when last learned from, and where the meter id sits (255: nowhere).
        self._sig = bytearray(5)
        self._at = bytearray(b"\xff\xff\xff\xff\xff")
        self._last = None  # ticks of the last message handed out
        self.meter = None  # make, e.g. "aidon"
        self.meter_id = None
        self.meter_type = None

    # -- what exists ---------------------------------------------------------

    def on_reading(self, reading):
        """Learn the meter and the values this reading carries.

        Called for every frame (every 2.5 s on an Aidon): a layout already
        seen from the same meter returns without allocating.
        """
        items = reading.items
        code = reading.list if reading.list in (1, 2, 3) else READING
        at = self._at[code]
        if self._sig[code] == len(items) & 255 and (
                at == 255 or items[at] is not None and items[at][1] == self.meter_id):
            return
        where = self._where
        todo = self._todo
        n = self._n
        for k in range(len(items)):
            item = items[k]
            if item is not None and item[3] is None and item[1] is not None:
                e = lookup(item[0])
                if e is None:
                    continue
                if e[0] == "meter_id" and item[1] != self.meter_id:
                    # One device per meter: another meter means every value
                    # is learned again under the new device. Values seen
                    # before the first id (Aidon's List 1 has none) stay.
                    if self.meter_id is not None:
                        self.meter_type = None
                        for i in range(n):
                            where[i] = todo[i] = 0
                        for i in range(5):
                            self._sig[i] = 0
                            self._at[i] = 255
                        for i in range(n, n + N_ENERGY):
                            todo[i] = 1 if where[i] else 0
                    self.meter = reading.meter
                    self.meter_id = item[1]
                if e[0] == "meter_id":
                    self._at[code] = min(k, 255)
                elif e[0] == "meter_type" and item[1] != self.meter_type:
                    if self.meter_type is not None:  # the model shown changed
                        for i in range(n + N_ENERGY):
                            if where[i]:
                                todo[i] = 1
                    self.meter_type = item[1]
        self._sig[code] = len(items) & 255
        fields = self._fields
        for item in items:
            if item is None or item[1] is None or item[3] is None:
                continue
            e = lookup(item[0])
            if e is None or e[1] != item[3]:
                continue  # published under its OBIS code: nothing to announce
            try:
                i = fields.index(e)
            except ValueError:
                continue  # a unit no kind here covers
            if where[i] == 0 or code < where[i]:
                where[i] = code
                todo[i] = 1

    def on_energy(self):
        """<base>/energy is published: announce its values (once)."""
        self._mark(self._n, N_ENERGY, ENERGY_T)

    def on_diag(self):
        """<base>/diag is published: announce the dongle's diagnostics (once)."""
        self._mark(self._n + N_ENERGY, N_DIAG, DIAG_T)

    def _mark(self, start, count, code):
        for i in range(start, start + count):
            if self._where[i] == 0:
                self._where[i] = code
                self._todo[i] = 1

    def reannounce(self):
        """Everything known once more (HA said online, the broker reconnected, or
        url was set)."""
        for i in range(len(self._where)):
            if self._where[i]:
                self._todo[i] = 1

    def _ready(self, i):
        # The meter's values wait for its id (the device needs it).
        return self.meter_id is not None or i >= self._n + N_ENERGY

    # -- messages ----------------------------------------------------------

    def next(self, now_ms, diff):
        """(topic, payload) bytes of the next config to publish retained, or None.

        diff is the clock's ticks_diff. At most one message per pace_ms; a
        message handed out counts as sent (after a failed publish, call
        reannounce() once the broker is back).
        """
        if self._last is not None:
            d = diff(now_ms, self._last)
            if 0 <= d < self.pace_ms:  # negative: so long ago that the ticks wrapped
                return None
        todo = self._todo
        for i in range(len(todo)):
            if todo[i] and self._ready(i):
                todo[i] = 0
                self._last = now_ms
                from hanport.discovery_msg import message
                return message(self, i)
        _forget_builder()  # nothing to announce now: free the builder
        return None
