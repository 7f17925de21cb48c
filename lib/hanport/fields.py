"""Readable names for OBIS codes, the same for every meter make.

Aidon and Kaifa use B=0 for electricity values and Kamstrup uses B=1
(1-1:1.7.0.255), and the clock is 0-0:1.0.0.255 or 0-1:1.0.0.255: the name
lookup ignores B so that all makes publish the same field names. The name
ends with the unit the value is published in; an item whose unit does not
match (or whose code is not listed) keeps its OBIS code as its name.
"""

# "A:C.D.E.F" (B left out) -> (name, unit or None for text)
_NAMES = {
    "1:0.2.129.255": ("list_version", None),
    "0:96.1.0.255": ("meter_id", None),
    "1:0.0.5.255": ("meter_id", None),  # Kamstrup
    "0:96.1.7.255": ("meter_type", None),
    "1:96.1.1.255": ("meter_type", None),  # Kamstrup
    "0:1.0.0.255": ("meter_clock", None),
    "1:1.7.0.255": ("power_import_w", "W"),
    "1:2.7.0.255": ("power_export_w", "W"),
    "1:3.7.0.255": ("reactive_import_var", "var"),
    "1:4.7.0.255": ("reactive_export_var", "var"),
    "1:31.7.0.255": ("current_l1_a", "A"),
    "1:51.7.0.255": ("current_l2_a", "A"),
    "1:71.7.0.255": ("current_l3_a", "A"),
    "1:32.7.0.255": ("voltage_l1_v", "V"),
    "1:52.7.0.255": ("voltage_l2_v", "V"),
    "1:72.7.0.255": ("voltage_l3_v", "V"),
    "1:1.8.0.255": ("energy_import_wh", "Wh"),
    "1:2.8.0.255": ("energy_export_wh", "Wh"),
    "1:3.8.0.255": ("reactive_energy_import_varh", "varh"),
    "1:4.8.0.255": ("reactive_energy_export_varh", "varh"),
    # Per-phase power (Swedish Aidon 27-item list).
    "1:21.7.0.255": ("power_import_l1_w", "W"),
    "1:22.7.0.255": ("power_export_l1_w", "W"),
    "1:23.7.0.255": ("reactive_import_l1_var", "var"),
    "1:24.7.0.255": ("reactive_export_l1_var", "var"),
    "1:41.7.0.255": ("power_import_l2_w", "W"),
    "1:42.7.0.255": ("power_export_l2_w", "W"),
    "1:43.7.0.255": ("reactive_import_l2_var", "var"),
    "1:44.7.0.255": ("reactive_export_l2_var", "var"),
    "1:61.7.0.255": ("power_import_l3_w", "W"),
    "1:62.7.0.255": ("power_export_l3_w", "W"),
    "1:63.7.0.255": ("reactive_import_l3_var", "var"),
    "1:64.7.0.255": ("reactive_export_l3_var", "var"),
}


def _key(obis):
    """"1-1:1.7.0.255" -> "1:1.7.0.255" (only B=0 and B=1 are folded)."""
    if len(obis) > 4 and obis[1] == "-" and obis[3] == ":" and obis[2] in "01":
        return obis[0] + obis[3:]
    return None


def lookup(obis):
    """(name, unit) listed for this OBIS code, or None."""
    k = _key(obis)
    return None if k is None else _NAMES.get(k)


def name(obis, unit):
    """Field name for an item with this OBIS code and unit (None for text)."""
    entry = lookup(obis)
    if entry is not None and entry[1] == unit:
        return entry[0]
    return obis


def listed():
    """(name, unit) of every known field, for the documentation."""
    seen = []
    for k in sorted(_NAMES):
        entry = _NAMES[k]
        if entry not in seen:
            seen.append(entry)
    return seen
