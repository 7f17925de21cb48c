"""Readable names for OBIS codes, the same for every meter make.

Aidon and Kaifa use B=0 for electricity values and Kamstrup uses B=1
(1-1:1.7.0.255), and the clock is 0-0:1.0.0.255 or 0-1:1.0.0.255: the name
lookup ignores B so that all makes publish the same field names. The name
ends with the unit the value is published in; an item whose unit does not
match (or whose code is not listed) keeps its OBIS code as its name.
"""

# Where each field sits: " A:C.D.E.F" (B left out), in _FIELDS order, all in
# one string. A dict of 32 keys took about 1 KB more heap (the key strings and
# its hash table); finding a code in this string allocates nothing.
_CODES = (
    " 1:0.2.129.255"
    " 0:96.1.0.255"
    " 1:0.0.5.255"  # Kamstrup
    " 0:96.1.7.255"
    " 1:96.1.1.255"  # Kamstrup
    " 0:1.0.0.255"
    " 1:1.7.0.255"
    " 1:2.7.0.255"
    " 1:3.7.0.255"
    " 1:4.7.0.255"
    " 1:31.7.0.255"
    " 1:51.7.0.255"
    " 1:71.7.0.255"
    " 1:32.7.0.255"
    " 1:52.7.0.255"
    " 1:72.7.0.255"
    " 1:1.8.0.255"
    " 1:2.8.0.255"
    " 1:3.8.0.255"
    " 1:4.8.0.255"
    # Per-phase power (Swedish Aidon 27-item list).
    " 1:21.7.0.255"
    " 1:22.7.0.255"
    " 1:23.7.0.255"
    " 1:24.7.0.255"
    " 1:41.7.0.255"
    " 1:42.7.0.255"
    " 1:43.7.0.255"
    " 1:44.7.0.255"
    " 1:61.7.0.255"
    " 1:62.7.0.255"
    " 1:63.7.0.255"
    " 1:64.7.0.255"
    " "  # the end of the last code
)

# (name, unit or None for text) of each code of _CODES, in the same order.
_FIELDS = (
    ("list_version", None),
    ("meter_id", None),
    ("meter_id", None),  # Kamstrup
    ("meter_type", None),
    ("meter_type", None),  # Kamstrup
    ("meter_clock", None),
    ("power_import_w", "W"),
    ("power_export_w", "W"),
    ("reactive_import_var", "var"),
    ("reactive_export_var", "var"),
    ("current_l1_a", "A"),
    ("current_l2_a", "A"),
    ("current_l3_a", "A"),
    ("voltage_l1_v", "V"),
    ("voltage_l2_v", "V"),
    ("voltage_l3_v", "V"),
    ("energy_import_wh", "Wh"),
    ("energy_export_wh", "Wh"),
    ("reactive_energy_import_varh", "varh"),
    ("reactive_energy_export_varh", "varh"),
    # Per-phase power (Swedish Aidon 27-item list).
    ("power_import_l1_w", "W"),
    ("power_export_l1_w", "W"),
    ("reactive_import_l1_var", "var"),
    ("reactive_export_l1_var", "var"),
    ("power_import_l2_w", "W"),
    ("power_export_l2_w", "W"),
    ("reactive_import_l2_var", "var"),
    ("reactive_export_l2_var", "var"),
    ("power_import_l3_w", "W"),
    ("power_export_l3_w", "W"),
    ("reactive_import_l3_var", "var"),
    ("reactive_export_l3_var", "var"),
)


def lookup(obis):
    """(name, unit) listed for this OBIS code, or None.

    "1-1:1.7.0.255" is found as " 1:1.7.0.255 " (only B=0 and B=1 are folded).
    """
    if len(obis) < 5 or obis[1] != "-" or obis[3] != ":" or obis[2] not in "01":
        return None
    a = obis[0]
    tail = obis[3:]  # ":C.D.E.F"
    at = _CODES.find(tail)
    while at >= 2:
        if _CODES[at - 1] == a and _CODES[at - 2] == " " and _CODES[at + len(tail)] == " ":
            # the n-th code is preceded by n + 1 spaces
            return _FIELDS[_CODES.count(" ", 0, at - 1) - 1]
        at = _CODES.find(tail, at + 1)
    return None


def name(obis, unit):
    """Field name for an item with this OBIS code and unit (None for text)."""
    entry = lookup(obis)
    if entry is not None and entry[1] == unit:
        return entry[0]
    return obis


def listed():
    """(name, unit) of every known field, for the documentation (in the order of
    their sorted codes)."""
    codes = _CODES.split()
    seen = []
    for k in sorted(codes):
        entry = _FIELDS[codes.index(k)]
        if entry not in seen:
            seen.append(entry)
    return seen
