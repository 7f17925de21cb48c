"""Kaifa: a structure of bare values whose position gives the meaning.

No scalers are sent: currents are in mA, voltages in 0.1 V, power in W and
var, energy in Wh and varh. The OBIS codes are those Aidon uses (B = 0).
"""
from hanport.axdr import STRUCTURE, DecodeError
from hanport.reading import Reading
from hanport import items as _items

_VERSION = ("1-1:0.2.129.255", None, None)
_ID = ("0-0:96.1.0.255", None, None)
_TYPE = ("0-0:96.1.7.255", None, None)
_POWER = (
    ("1-0:1.7.0.255", 0, "W"),
    ("1-0:2.7.0.255", 0, "W"),
    ("1-0:3.7.0.255", 0, "var"),
    ("1-0:4.7.0.255", 0, "var"),
)
_IL1 = ("1-0:31.7.0.255", -3, "A")
_IL2 = ("1-0:51.7.0.255", -3, "A")
_IL3 = ("1-0:71.7.0.255", -3, "A")
_UL1 = ("1-0:32.7.0.255", -1, "V")
_UL2 = ("1-0:52.7.0.255", -1, "V")
_UL3 = ("1-0:72.7.0.255", -1, "V")
_CLOCK = ("0-0:1.0.0.255", None, None)
_ENERGY = (
    ("1-0:1.8.0.255", 0, "Wh"),
    ("1-0:2.8.0.255", 0, "Wh"),
    ("1-0:3.8.0.255", 0, "varh"),
    ("1-0:4.8.0.255", 0, "varh"),
)

_ONE_PHASE = (_VERSION, _ID, _TYPE) + _POWER + (_IL1, _UL1)
_THREE_PHASE = (_VERSION, _ID, _TYPE) + _POWER + (_IL1, _IL2, _IL3, _UL1, _UL2, _UL3)

# element count -> (list number, fields)
LAYOUTS = {
    1: (1, _POWER[:1]),
    9: (2, _ONE_PHASE),
    13: (2, _THREE_PHASE),
    14: (3, _ONE_PHASE + (_CLOCK,) + _ENERGY),
    18: (3, _THREE_PHASE + (_CLOCK,) + _ENERGY),
}


def decode(r):
    count = r.expect(STRUCTURE)
    layout = LAYOUTS.get(count)
    if layout is None:
        raise DecodeError("unknown_list")
    list_no, fields = layout
    items = []
    for obis, scaler, unit in fields:
        item = _items.make(obis, r.value(), scaler, unit, obis is _CLOCK[0])
        if item is not None:
            items.append(item)
    return Reading("kaifa", list_no, None, items)
