"""Kamstrup: a structure of the list version, then OBIS code / value pairs.

No scalers are sent: power in W and var, current in 0.01 A, voltage in V,
energy in units of 10 Wh and 10 varh. Single-phase meters pad the phases
they lack with null-data, which is skipped.
"""
from hanport.axdr import STRUCTURE, DecodeError, Octets, obis_text
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


def decode(r):
    count = r.expect(STRUCTURE)
    version = r.value()
    if count % 2 != 1:
        raise DecodeError("unknown_list")
    items = [(VERSION, version, None, None)]
    hourly = False
    for _ in range(count // 2):
        code = r.value()
        value = r.value()
        if code is None:
            continue  # padding
        if not isinstance(code, Octets) or code.length != 6:
            raise DecodeError("unknown_list")
        key = _items.key(code.buf, code.start)
        scaler, unit = IMPLIED.get(key, _NONE)
        clock = key == _items.CLOCK_KEY
        hourly = hourly or clock or (unit is not None and unit[-1] == "h")
        item = _items.make(obis_text(code.buf, code.start), value, scaler, unit, clock)
        if item is not None:
            items.append(item)
    meter = "kamstrup" if version.startswith("Kamstrup") else None
    return Reading(meter, 3 if hourly else 2, None, items)
