"""The config messages of hanport.discovery, built one at a time by message().

A module of its own: hanport.discovery imports it only while something is to
be announced and forgets it afterwards, so its tables and code take heap
only while announcing. The facts from Home Assistant behind them are in
hanport.discovery's docstring.
"""
from hanport.discovery import DIAG_T, ENERGY_T, HOURLY_S, LIST_UNITS, LIVE_S
from hanport.reading import json_string

# Each kind of value: "unit device_class state_class" (- for none; state
# class m: measurement, t: total_increasing). The tables here are strings
# read with _entry(): they are read only when a message is built, and tuples
# of strings took about twice the heap. Allowed combinations:
# homeassistant/components/sensor/const.py, DEVICE_CLASS_UNITS and
# DEVICE_CLASS_STATE_CLASSES. device_class energy takes only total or
# total_increasing, never measurement; a total_increasing value that falls
# below 90 % of the last one starts a new cycle
# (homeassistant/components/sensor/recorder.py, reset_detected), which is
# what the hourly, daily and monthly sums do when they start again. An energy
# amount that is no running total (last hour, capacity, headroom) gets no
# state_class. reactive_energy (varh) exists since Home Assistant 2025.6.
# Kinds 0-5 are the list fields' units, in LIST_UNITS order; 6: energy, no
# running total; 7: a plain number; 8: a counter since boot; 9-11 (hex digits
# a, b): uptime, free heap, Wi-Fi signal; 12 (c): text.
_KINDS = (
    "W power m;var reactive_power m;A current m;V voltage m;Wh energy t;"
    "varh reactive_energy t;Wh energy -;- - m;- - t;s duration t;B data_size m;"
    "dBm signal_strength m;- - -"
)

# <base>/energy, then <base>/diag values: "key kind name" (kind in hex). The
# diag keys are those of README.md "Diagnostics"; discovery.N_ENERGY and
# N_DIAG count them.
_EXTRA = (
    "hour_import_wh 4 Import this hour;last_hour_import_wh 6 Import last hour;"
    "today_import_wh 4 Import today;today_export_wh 4 Export today;"
    "month_import_wh 4 Import this month;month_export_wh 4 Export this month;"
    "capacity_wh 6 Capacity average;capacity_step 7 Capacity step;"
    "step_limit_wh 6 Capacity step limit;headroom_wh 6 Headroom this hour;"
    "uptime_s 9 Uptime;free_heap a Free heap;rssi b Wi-Fi signal;meter c Meter state;"
    "mqtt c MQTT state;readings 8 Readings;published 8 Published;dropped 8 Dropped"
)

# The state topic of each `where` code of hanport.discovery (0 is unused).
_SUFFIX = ";/list1;/list2;/list3;/reading;/energy;/diag"


def _entry(table, j):
    """The j-th (from 0) ";"-separated entry of a table string."""
    a = 0
    for _ in range(j):
        a = table.index(";", a) + 1
    b = table.find(";", a)
    return table[a:] if b < 0 else table[a:b]


def _extra(j):
    """(key, kind, name) of the j-th entry of _EXTRA."""
    e = _entry(_EXTRA, j)
    sp = e.index(" ")
    return e[:sp], int(e[sp + 1], 16), e[sp + 3:]


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
        kind = LIST_UNITS.index(unit)
        name = _title(key, unit)
    else:
        key, kind, name = _extra(i - n)
    # Keys in Home Assistant's abbreviations
    # (homeassistant/components/mqtt/abbreviations.py) and "~" for the base
    # topic: a third less to build, hold and send. Built back to front:
    # unit, device_class, state_class, category.
    extra = ',"ent_cat":"diagnostic"' if code == DIAG_T else ""
    unit, device_class, state_class = _entry(_KINDS, kind).split(" ")
    if state_class != "-":
        extra = ',"stat_cla":"%s"%s' % (
            "measurement" if state_class == "m" else "total_increasing", extra)
    if device_class != "-":
        extra = ',"dev_cla":"%s"%s' % (device_class, extra)
    if unit != "-":
        extra = ',"unit_of_meas":"%s"%s' % (unit, extra)
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
    ) % (json_string(d.base_topic)[1:-1], name, owner, key, eid, key, _entry(_SUFFIX, code), key,
         extra, expire, device)
    return topic.encode(), payload.encode()
