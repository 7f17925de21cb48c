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

Nothing is kept per message: the tables are constants, the state is a few
bytearrays (where each value was first seen, what is still to be
announced), and a payload is built only when next() hands it out, with Home
Assistant's key abbreviations and "~" for the base topic (about 460 bytes a
message instead of 700). One message per PACE_MS at most: a dongle powered
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
from hanport.fields import listed, lookup
from hanport.reading import json_string

PACE_MS = 1000  # at most one config message a second
LIVE_S = 300  # expire_after for List 1/2 values (pushed every 2-10 s)
HOURLY_S = 4500  # List 3 and <base>/energy: hourly, plus 15 min for a late push

# Each kind of value: its unit, device_class and state_class (m: measurement,
# t: total_increasing, -: none). Allowed combinations:
# homeassistant/components/sensor/const.py, DEVICE_CLASS_UNITS and
# DEVICE_CLASS_STATE_CLASSES. device_class energy takes only total or
# total_increasing, never measurement; a total_increasing value that falls
# below 90 % of the last one starts a new cycle
# (homeassistant/components/sensor/recorder.py, reset_detected), which is
# what the hourly, daily and monthly sums do when they start again. An energy
# amount that is no running total (last hour, capacity, headroom) gets no
# state_class. reactive_energy (varh) exists since Home Assistant 2025.6.
# Kinds 0-5 are the list fields' units, in _UNIT order.
_UNIT = ("W", "var", "A", "V", "Wh", "varh", "Wh", "", "", "s", "B", "dBm", "")
_CLASS = ("power", "reactive_power", "current", "voltage", "energy", "reactive_energy",
          "energy", "", "", "duration", "data_size", "signal_strength", "")
_STATE = "mmmmtt-mttmm-"
# kind 6: energy, no running total; 7: a plain number; 8: a counter since
# boot; 9-11 (hex digits a, b): uptime, free heap, Wi-Fi signal; 12 (c): text.

# <base>/energy, then <base>/diag values: "key kind name;" (one string, not
# 18 tuples: it is read only when a message is built). The diag keys are
# those of README.md "Diagnostics".
_EXTRA = (
    "hour_import_wh 4 Import this hour;last_hour_import_wh 6 Import last hour;"
    "today_import_wh 4 Import today;today_export_wh 4 Export today;"
    "month_import_wh 4 Import this month;month_export_wh 4 Export this month;"
    "capacity_wh 6 Capacity average;capacity_step 7 Capacity step;"
    "step_limit_wh 6 Capacity step limit;headroom_wh 6 Headroom this hour;"
    "uptime_s 9 Uptime;free_heap a Free heap;rssi b Wi-Fi signal;meter c Meter state;"
    "mqtt c MQTT state;readings 8 Readings;published 8 Published;dropped 8 Dropped"
)
_N_ENERGY = 10
_N_DIAG = 8

# Where a value was first seen (the `where` bytes); a smaller list number
# wins because it is pushed more often.
_READING, _ENERGY_T, _DIAG_T = 4, 5, 6
_SUFFIX = ("", "/list1", "/list2", "/list3", "/reading", "/energy", "/diag")


def _extra(j):
    """(key, kind, name) of the j-th entry of _EXTRA."""
    s = _EXTRA
    a = 0
    for _ in range(j):
        a = s.index(";", a) + 1
    b = s.find(";", a)
    if b < 0:
        b = len(s)
    sp = s.index(" ", a)
    return s[a:sp], int(s[sp + 1], 16), s[sp + 3:b]


def _safe(s):
    """Topic level / id part: [a-zA-Z0-9_-] only (HA's TOPIC_MATCHER)."""
    out = []
    for ch in s:
        ok = "a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_-"
        out.append(ch if ok else "_")
    return "".join(out)


def _title(field, unit):
    """"power_import_l1_w" -> "Power import L1" (unit suffix dropped)."""
    words = field.split("_")[:-1]
    if unit == "var" and words[1] != "power":
        words.insert(1, "power")  # "reactive_import_var" is reactive power
    out = []
    for w in words:
        out.append(w.upper() if len(w) == 2 and w[0] == "l" else w)
    t = " ".join(out)
    return t[0].upper() + t[1:]


class Discovery:
    def __init__(self, prefix, base_topic, node_id, sw_version, url=None,
                 diag_interval_s=60, pace_ms=PACE_MS):
        self.prefix = prefix
        self.name = node_id
        self.node = _safe(node_id)
        self.sw = sw_version
        self.url = url  # the dongle's web page; reannounce() after setting it
        self.pace_ms = pace_ms
        self.diag_s = 3 * diag_interval_s  # three missed diag messages: stale
        self.status_topic = (prefix + "/status").encode()
        self._base = json_string(base_topic)[1:-1]  # escaped once
        # Entity id: lowercase slug without "__" or "_" at either end
        # (homeassistant/core.py, VALID_ENTITY_ID).
        eid = self.node.lower().replace("-", "_")
        while "__" in eid:
            eid = eid.replace("__", "_")
        self._eid = "sensor." + (eid.strip("_") or "hanport") + "_"
        # Numeric list fields named by hanport.fields (same names as the payloads).
        self._fields = tuple(e for e in listed() if e[1] in _UNIT[:6])
        self._n = len(self._fields)
        n = self._n + _N_ENERGY + _N_DIAG
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
        code = reading.list if reading.list in (1, 2, 3) else _READING
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
                        for i in range(n, n + _N_ENERGY):
                            todo[i] = 1 if where[i] else 0
                    self.meter = reading.meter
                    self.meter_id = item[1]
                if e[0] == "meter_id":
                    self._at[code] = min(k, 255)
                elif e[0] == "meter_type" and item[1] != self.meter_type:
                    if self.meter_type is not None:  # the model shown changed
                        for i in range(n + _N_ENERGY):
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
        self._mark(self._n, _N_ENERGY, _ENERGY_T)

    def on_diag(self):
        """<base>/diag is published: announce the dongle's diagnostics (once)."""
        self._mark(self._n + _N_ENERGY, _N_DIAG, _DIAG_T)

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
        return self.meter_id is not None or i >= self._n + _N_ENERGY

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
                return self._message(i)
        return None

    def _message(self, i):
        n = self._n
        code = self._where[i]
        if i < n:
            key, unit = self._fields[i]
            kind = _UNIT.index(unit)
            name = _title(key, unit)
        else:
            key, kind, name = _extra(i - n)
        # Keys in Home Assistant's abbreviations
        # (homeassistant/components/mqtt/abbreviations.py) and "~" for the base
        # topic: a third less to build, hold and send. Built back to front:
        # unit, device_class, state_class, category.
        extra = ',"ent_cat":"diagnostic"' if code == _DIAG_T else ""
        st = _STATE[kind]
        if st != "-":
            extra = ',"stat_cla":"%s"%s' % ("measurement" if st == "m" else "total_increasing", extra)
        if _CLASS[kind]:
            extra = ',"dev_cla":"%s"%s' % (_CLASS[kind], extra)
        if _UNIT[kind]:
            extra = ',"unit_of_meas":"%s"%s' % (_UNIT[kind], extra)
        tail = ',"sw":' + json_string(self.sw)
        if self.url:
            tail += ',"cu":' + json_string(self.url)
        if code == _DIAG_T:
            owner = self.node
            obj = key
            expire = self.diag_s
            device = '{"ids":["hanport_%s"],"name":%s,"mdl":"hanport HAN dongle"%s}' % (
                owner, json_string(self.name), tail)
        else:
            owner = _safe(self.meter_id)
            obj = owner + "_" + key
            expire = HOURLY_S if code in (3, _ENERGY_T) else LIVE_S
            make = self.meter
            mtype = self.meter_type
            if mtype:
                tail = ',"mdl":%s%s' % (json_string(mtype), tail)
            if make:
                make = make[0].upper() + make[1:]  # "aidon" -> "Aidon"
                tail = ',"mf":"%s"%s' % (make, tail)
            device = '{"ids":["hanport_%s"],"name":%s%s,"serial_number":%s,"via_device":"hanport_%s"}' % (
                owner, json_string((make or "Meter") + " " + (mtype or self.meter_id)), tail,
                json_string(self.meter_id), self.node)
        topic = "%s/sensor/%s/%s/config" % (self.prefix, self.node, obj)
        payload = (
            '{"~":"%s","name":"%s","uniq_id":"hanport_%s_%s","default_entity_id":"%s%s",'
            '"stat_t":"~%s","val_tpl":"{{ value_json.%s }}"%s,"exp_aft":%d,'
            '"avty_t":"~/status","dev":%s}'
        ) % (self._base, name, owner, key, self._eid, key, _SUFFIX[code], key, extra, expire, device)
        return topic.encode(), payload.encode()
