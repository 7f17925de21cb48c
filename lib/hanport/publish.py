"""Readings as MQTT messages: topics and JSON payload bytes.

JSON is built as text in a fixed key order (MicroPython dicts are unordered
and its json has no sort_keys) and numbers are rendered from integer and
scaler (no floats: the ESP32's are 32-bit), so the device and the PC publish
the same bytes. The contract is in README.md, "MQTT messages".
"""
from binascii import hexlify

from hanport.fields import name
from hanport.reading import item_json, json_or_null, json_string

_LIST_TOPIC = {1: "/list1", 2: "/list2", 3: "/list3"}


def base_topic(cfg):
    """cfg["mqtt"]["base_topic"], or "han/<device name>" when it is empty."""
    base = cfg["mqtt"].get("base_topic")
    if not base:
        base = "han/" + _topic_safe(cfg["device"]["name"] or "hanport")
    while base.endswith("/"):
        base = base[:-1]
    return base


def _topic_safe(s):
    # '/', '+' and '#' would split the topic or make it a wildcard.
    out = []
    for ch in s:
        out.append("-" if ch in "/+# " else ch)
    return "".join(out)


def reading_topic(base, reading):
    """<base>/list1, /list2, /list3, or <base>/reading for other layouts."""
    return base + _LIST_TOPIC.get(reading.list, "/reading")


def reading_payload(reading, ts):
    """One JSON object per frame: meter, list, ts (when known), then the items in the
    order the meter sent them, named by hanport.fields."""
    out = ['{"meter":', json_or_null(reading.meter), ',"list":']
    out.append("null" if reading.list is None else str(reading.list))
    if ts:
        out.append(',"ts":')
        out.append(str(ts))
    if reading.apdu_time:
        out.append(',"apdu_time":')
        out.append(json_string(reading.apdu_time))
    for item in reading.items:
        if item is None:
            continue
        out.append(",")
        out.append(json_string(name(item[0], item[3])))
        out.append(":")
        out.append(item_json(item))
    out.append("}")
    return "".join(out).encode()


def raw_payload(frame):
    """The whole HDLC frame, flags included, as lowercase hex bytes."""
    return hexlify(frame)
