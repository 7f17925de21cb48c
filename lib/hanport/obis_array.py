"""Array of OBIS structures: Aidon, and any meter that names its values.

Each element is {OBIS, value} (text, clock) or {OBIS, value, {scaler, unit}}
(numbers). Decoded generically, so Aidon's Norwegian lists and the Swedish
27-item list need no table.
"""
from hanport.axdr import ARRAY, ENUM, INT8, OCTET_STRING, STRUCTURE, DecodeError, obis_text
from hanport.reading import UNITS, Reading
from hanport import items as _items

VERSION = "1-1:0.2.129.255"
POWER_IMPORT = "1-0:1.7.0.255"
ENERGY_IMPORT_KEY = 0x010800  # 1.8.0


def decode(r):
    count = r.expect(ARRAY)
    buf = r.buf
    items = []
    energy = False
    for _ in range(count):
        # {09 06 OBIS, value[, {0F scaler, 16 unit}]}: the fixed parts are
        # checked in place, which halves the decode time on CPython.
        p = r.p
        if p + 10 > r.end:
            raise DecodeError("axdr")
        n = buf[p + 1]
        if buf[p] != STRUCTURE or (n != 2 and n != 3) or buf[p + 2] != OCTET_STRING or buf[p + 3] != 6:
            raise DecodeError("unknown_list")
        obis = obis_text(buf, p + 4)
        key = _items.key(buf, p + 4)
        if key == ENERGY_IMPORT_KEY:
            energy = True
        r.p = p + 10
        value = r.value()
        scaler = 0
        unit = None
        if n == 3:
            p = r.p
            if p + 6 > r.end:
                raise DecodeError("axdr")
            if buf[p] != STRUCTURE or buf[p + 1] != 2 or buf[p + 2] != INT8 or buf[p + 4] != ENUM:
                raise DecodeError("unknown_list")
            scaler = buf[p + 3]
            if scaler > 127:
                scaler -= 256
            unit = UNITS.get(buf[p + 5])
            r.p = p + 6
        item = _items.make(obis, value, scaler, unit, key == _items.CLOCK_KEY)
        if item is not None:
            items.append(item)
    return Reading(_meter(items), _list_number(items, energy), None, items)


def _list_number(items, energy):
    # Norwegian lists: List 1 is active power alone; Lists 2 and 3 open
    # with the list version. Anything else (the Swedish list) has no number.
    if len(items) == 1 and items[0][0] == POWER_IMPORT:
        return 1
    if items and items[0][0] == VERSION:
        return 3 if energy else 2
    return None


def _meter(items):
    if items and items[0][0] == VERSION:
        version = items[0][1]
        if not (isinstance(version, str) and version.startswith("AIDON")):
            return None
    return "aidon"
