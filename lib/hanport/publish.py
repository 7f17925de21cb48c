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

# The largest reading payload published. The longest real List 3 gives about
# 900 bytes; a crafted frame of 2 kB could expand to tens of kB of JSON (hex
# of long strings), which the heap and a bus-powered dongle cannot afford.
MAX_PAYLOAD = 2048


class PayloadTooBig(ValueError):
    """The reading's JSON would exceed MAX_PAYLOAD bytes: counted, not published."""


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


def reading_payload(reading, ts, limit=MAX_PAYLOAD):
    """One JSON object per frame: meter, list, ts (when known), then the items in the
    order the meter sent them, named by hanport.fields.

    A name already used in this payload (a B=0 and a B=1 code for the same
    quantity, or a code sent twice) goes to the later item's OBIS code (then
    with "_2", "_3", ...), so every key is unique. Raises PayloadTooBig when
    the payload would exceed limit bytes (the loop counts it in diag).
    """
    out = ['{"meter":', json_or_null(reading.meter), ',"list":']
    out.append("null" if reading.list is None else str(reading.list))
    if ts:
        out.append(',"ts":')
        out.append(str(ts))
    if reading.apdu_time:
        out.append(',"apdu_time":')
        out.append(json_string(reading.apdu_time))
    used = []
    size = 0
    for item in reading.items:
        if item is None:
            continue
        key = name(item[0], item[3])
        if key in used:
            key = _unique(item[0], used)
        used.append(key)
        out.append(",")
        k = json_string(key)
        v = item_json(item)
        out.append(k)
        out.append(":")
        out.append(v)
        size += len(k) + len(v) + 2
        if size > limit:  # characters: a lower bound of the bytes; stop early
            break
    out.append("}")
    payload = "".join(out).encode()
    if len(payload) > limit:
        raise PayloadTooBig("too_big")
    return payload


def _unique(obis, used):
    if obis not in used:
        return obis
    n = 2
    while obis + "_" + str(n) in used:
        n += 1
    return obis + "_" + str(n)


def raw_payload(frame):
    """The whole HDLC frame, flags included, as lowercase hex bytes."""
    return hexlify(frame)
