"""Kamstrup: a structure of the list version, then OBIS code / value pairs.

No scalers are sent: power in W and var, current in 0.01 A, voltage in V,
energy in units of 10 Wh and 10 varh. Single-phase meters pad the phases
they lack with null-data, which is skipped.
"""
from hanport.axdr import NULL, OCTET_STRING, STRUCTURE, DecodeError, obis_text
from hanport.reading import Reading
from hanport import items as _items

VERSION = "1-1:0.2.129.255"

# OBIS C.D.E (as items.key) -> (scaler, unit)
IMPLIED = {
    0x010700: (0, "W"), 0x020700: (0, "W"), 0x030700: (0, "var"), 0x040700: (0, "var"),
    0x1F0700: (-2, "A"), 0x330700: (-2, "A"), 0x470700: (-2, "A"),
    0x200700: (0, "V"), 0x340700: (0, "V"), 0x480700: (0, "V"),
    0x010800: (1, "Wh"), 0x020800: (1, "Wh"), 0x030800: (1, "varh"), 0x040800: (1, "varh"),
}
_NONE = (0, None)
HOURLY = (0x010800, 0x020800, 0x030800, 0x040800)  # the energy registers: only in List 3


def decode(r):
    count = r.expect(STRUCTURE)
    version = r.value()
    if count % 2 != 1:
        raise DecodeError("unknown_list")
    items = [(VERSION, version, None, None)]
    hourly = False
    buf = r.buf
    for _ in range(count // 2):
        p = r.p
        if p + 8 <= r.end and buf[p] == OCTET_STRING and buf[p + 1] == 6:
            o = p + 2  # the OBIS code, read in place: no object for it
            r.p = p + 8
        elif p < r.end and buf[p] == NULL:
            r.p = p + 1
            r.value()
            continue  # padding: null code, null value
        else:
            raise DecodeError("unknown_list")
        value = r.value()
        key = _items.key(buf, o)
        scaler, unit = IMPLIED.get(key, _NONE)
        clock = key == _items.CLOCK_KEY
        if clock or key in HOURLY:
            hourly = True
        item = _items.make(obis_text(buf, o), value, scaler, unit, clock)
        if item is not None:
            items.append(item)
    meter = "kamstrup" if version.startswith("Kamstrup") else None
    return Reading(meter, 3 if hourly else 2, None, items)
