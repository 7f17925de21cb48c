"""The config messages of hanport.discovery, built one at a time by message().

A module of its own: hanport.discovery imports it only while something is to
be announced and forgets it afterwards, so its tables and code take heap
only while announcing. The facts from Home Assistant behind them are in
hanport.discovery's docstring.
"""
from hanport.discovery import DIAG_T, ENERGY_T, HOURLY_S, LIST_UNITS, LIVE_S
from hanport.reading import json_string

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
# Kinds 0-5 are the list fields' units, in LIST_UNITS order.
_UNIT = LIST_UNITS + ("Wh", "", "", "s", "B", "dBm", "")
_CLASS = ("power", "reactive_power", "current", "voltage", "energy", "reactive_energy",
          "energy", "", "", "duration", "data_size", "signal_strength", "")
_STATE = "mmmmtt-mttmm-"
# kind 6: energy, no running total; 7: a plain number; 8: a counter since
# boot; 9-11 (hex digits a, b): uptime, free heap, Wi-Fi signal; 12 (c): text.

# <base>/energy, then <base>/diag values: "key kind name;" (one string, not
# 18 tuples: it is read only when a message is built). The diag keys are
# those of README.md "Diagnostics"; discovery.N_ENERGY and N_DIAG count them.
_EXTRA = (
    "hour_import_wh 4 Import this hour;last_hour_import_wh 6 Import last hour;"
    "today_import_wh 4 Import today;today_export_wh 4 Export today;"
    "month_import_wh 4 Import this month;month_export_wh 4 Export this month;"
    "capacity_wh 6 Capacity average;capacity_step 7 Capacity step;"
    "step_limit_wh 6 Capacity step limit;headroom_wh 6 Headroom this hour;"
    "uptime_s 9 Uptime;free_heap a Free heap;rssi b Wi-Fi signal;meter c Meter state;"
    "mqtt c MQTT state;readings 8 Readings;published 8 Published;dropped 8 Dropped"
)
# The state topic of each `where` code of hanport.discovery.
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


def message(d, i):
    """(topic, payload) bytes of the config message for value i of Discovery d."""
    n = d._n
    code = d._where[i]
    node = _safe(d.name)
    if i < n:
        key, unit = d._fields[i]
        kind = _UNIT.index(unit)
        name = _title(key, unit)
    else:
        key, kind, name = _extra(i - n)
    # Keys in Home Assistant's abbreviations
    # (homeassistant/components/mqtt/abbreviations.py) and "~" for the base
    # topic: a third less to build, hold and send. Built back to front:
    # unit, device_class, state_class, category.
    extra = ',"ent_cat":"diagnostic"' if code == DIAG_T else ""
    st = _STATE[kind]
    if st != "-":
        extra = ',"stat_cla":"%s"%s' % ("measurement" if st == "m" else "total_increasing", extra)
    if _CLASS[kind]:
        extra = ',"dev_cla":"%s"%s' % (_CLASS[kind], extra)
    if _UNIT[kind]:
        extra = ',"unit_of_meas":"%s"%s' % (_UNIT[kind], extra)
    tail = ',"sw":' + json_string(d.sw)
    if d.url:
        tail += ',"cu":' + json_string(d.url)
    if code == DIAG_T:
        owner = node
        obj = key
        expire = d.diag_s
        device = '{"ids":["hanport_%s"],"name":%s,"mdl":"hanport HAN dongle"%s}' % (
            owner, json_string(d.name), tail)
    else:
        owner = _safe(d.meter_id)
        obj = owner + "_" + key
        expire = HOURLY_S if code in (3, ENERGY_T) else LIVE_S
        make = d.meter
        mtype = d.meter_type
        if mtype:
            tail = ',"mdl":%s%s' % (json_string(mtype), tail)
        if make:
            make = make[0].upper() + make[1:]  # "aidon" -> "Aidon"
            tail = ',"mf":"%s"%s' % (make, tail)
        device = '{"ids":["hanport_%s"],"name":%s%s,"serial_number":%s,"via_device":"hanport_%s"}' % (
            owner, json_string((make or "Meter") + " " + (mtype or d.meter_id)), tail,
            json_string(d.meter_id), node)
    topic = "%s/sensor/%s/%s/config" % (d.prefix, node, obj)
    # Entity id: lowercase slug without "__" or "_" at either end
    # (homeassistant/core.py, VALID_ENTITY_ID).
    eid = node.lower().replace("-", "_")
    while "__" in eid:
        eid = eid.replace("__", "_")
    eid = eid.strip("_") or "hanport"
    payload = (
        '{"~":"%s","name":"%s","uniq_id":"hanport_%s_%s","default_entity_id":"sensor.%s_%s",'
        '"stat_t":"~%s","val_tpl":"{{ value_json.%s }}"%s,"exp_aft":%d,'
        '"avty_t":"~/status","dev":%s}'
    ) % (json_string(d.base_topic)[1:-1], name, owner, key, eid, key, _SUFFIX[code], key,
         extra, expire, device)
    return topic.encode(), payload.encode()
