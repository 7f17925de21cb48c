"""Kaifa: a structure of bare values whose position gives the meaning.

No scalers are sent: currents are in mA, voltages in 0.1 V, power in W and
var, energy in Wh and varh. The OBIS codes are those Aidon uses (B = 0).
"""
from hanport.axdr import STRUCTURE, DecodeError, obis_text
from hanport.reading import UNITS, Reading
from hanport import items as _items

# One 8-byte row per field: OBIS A B C D E F, scaler (signed), DLMS unit.
# Kept as one bytes object: on the ESP32 a table of tuples and strings
# costs several kB of heap, this costs 150 bytes.
_FIELDS = (
    b"\x01\x01\x00\x02\x81\xff\x00\x00"  # 0 list version
    b"\x00\x00\x60\x01\x00\xff\x00\x00"  # 1 meter id
    b"\x00\x00\x60\x01\x07\xff\x00\x00"  # 2 meter type
    b"\x01\x00\x01\x07\x00\xff\x00\x1b"  # 3 active power import, W
    b"\x01\x00\x02\x07\x00\xff\x00\x1b"  # 4 active power export, W
    b"\x01\x00\x03\x07\x00\xff\x00\x1d"  # 5 reactive power import, var
    b"\x01\x00\x04\x07\x00\xff\x00\x1d"  # 6 reactive power export, var
    b"\x01\x00\x1f\x07\x00\xff\xfd\x21"  # 7 current L1, mA
    b"\x01\x00\x33\x07\x00\xff\xfd\x21"  # 8 current L2, mA
    b"\x01\x00\x47\x07\x00\xff\xfd\x21"  # 9 current L3, mA
    b"\x01\x00\x20\x07\x00\xff\xff\x23"  # 10 voltage L1, 0.1 V
    b"\x01\x00\x34\x07\x00\xff\xff\x23"  # 11 voltage L2, 0.1 V
    b"\x01\x00\x48\x07\x00\xff\xff\x23"  # 12 voltage L3, 0.1 V
    b"\x00\x00\x01\x00\x00\xff\x00\x00"  # 13 meter clock
    b"\x01\x00\x01\x08\x00\xff\x00\x1e"  # 14 active energy import, Wh
    b"\x01\x00\x02\x08\x00\xff\x00\x1e"  # 15 active energy export, Wh
    b"\x01\x00\x03\x08\x00\xff\x00\x20"  # 16 reactive energy import, varh
    b"\x01\x00\x04\x08\x00\xff\x00\x20"  # 17 reactive energy export, varh
)

# element count -> (list number, field rows in order)
LAYOUTS = {
    1: (1, b"\x03"),
    9: (2, b"\x00\x01\x02\x03\x04\x05\x06\x07\x0a"),
    13: (2, b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"),
    14: (3, b"\x00\x01\x02\x03\x04\x05\x06\x07\x0a\x0d\x0e\x0f\x10\x11"),
    18: (3, b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"),
}


_rows = []  # (obis, scaler, unit, clock) per row of _FIELDS, built at the first frame


def _row(i):
    if not _rows:
        for p in range(0, len(_FIELDS), 8):
            scaler = _FIELDS[p + 6]
            if scaler > 127:
                scaler -= 256
            clock = _items.key(_FIELDS, p) == _items.CLOCK_KEY
            _rows.append((obis_text(_FIELDS, p), scaler, UNITS.get(_FIELDS[p + 7]), clock))
    return _rows[i]


def decode(r):
    count = r.expect(STRUCTURE)
    layout = LAYOUTS.get(count)
    if layout is None:
        raise DecodeError("unknown_list")
    list_no, rows = layout
    items = []
    for i in rows:
        obis, scaler, unit, clock = _row(i)
        item = _items.make(obis, r.value(), scaler, unit, clock)
        if item is not None:
            items.append(item)
    return Reading("kaifa", list_no, None, items)
