"""Array of OBIS structures: Aidon, and any meter that names its values.

Each element is {OBIS, value} (text, clock) or {OBIS, value, {scaler, unit}}
(numbers). Decoded generically, so Aidon's Norwegian lists and the Swedish
27-item list need no table.
"""
from hanport.axdr import ARRAY, STRUCTURE, DecodeError, Octets, obis_text
from hanport.reading import UNITS, Reading
from hanport import items as _items

VERSION = "1-1:0.2.129.255"
POWER_IMPORT = "1-0:1.7.0.255"
ENERGY_IMPORT_KEY = 0x010800  # 1.8.0


def decode(r):
    count = r.expect(ARRAY)
    items = []
    energy = False
    for _ in range(count):
        n = r.expect(STRUCTURE)
        if n != 2 and n != 3:
            raise DecodeError("unknown_list")
        code = r.value()
        if not isinstance(code, Octets) or code.length != 6:
            raise DecodeError("unknown_list")
        obis = obis_text(code.buf, code.start)
        key = _items.key(code.buf, code.start)
        energy = energy or key == ENERGY_IMPORT_KEY
        value = r.value()
        scaler = 0
        unit = None
        if n == 3:
            if r.expect(STRUCTURE) != 2:
                raise DecodeError("unknown_list")
            scaler = r.value()
            unit_code = r.value()
            if not isinstance(scaler, int) or not isinstance(unit_code, int):
                raise DecodeError("unknown_list")
            unit = UNITS.get(unit_code)
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
