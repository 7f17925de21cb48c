"""A decoded meter reading and exact decimal rendering.

Values stay integers with a decimal scaler: the ESP32's floats have 7
significant digits and energy registers have more.
"""

# DLMS unit enumeration (IEC 62056-6-2) for the units these meters send.
UNITS = {27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz"}


class Reading:
    """One frame's content.

    meter: "aidon", "kaifa", "kamstrup" or None; list: 1, 2, 3 or None;
    apdu_time: the notification's date-time text or None;
    items: (obis, value, scaler, unit) tuples. Numbers are int value x
    10**scaler in unit; text and clock items have scaler and unit None.
    """

    def __init__(self, meter, list_no, apdu_time, items):
        self.meter = meter
        self.list = list_no
        self.apdu_time = apdu_time
        self.items = items


def decimal_text(value, scaler):
    """value x 10**scaler as the shortest exact decimal text: 2376,-1 -> "237.6"."""
    if scaler >= 0:
        return str(value * 10 ** scaler)
    digits = str(-value if value < 0 else value)
    k = -scaler
    if len(digits) <= k:
        digits = "0" * (k + 1 - len(digits)) + digits
    whole = digits[:-k]
    frac = digits[-k:]
    end = len(frac)
    while end and frac[end - 1] == "0":
        end -= 1
    text = whole + "." + frac[:end] if end else whole
    if value < 0:
        text = "-" + text
    return text


def item_json(item):
    """An item's value as JSON text: an exact number, a string or null."""
    value = item[1]
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if item[2] is None:
        return json_string(value)
    return decimal_text(value, item[2])


def json_string(s):
    """JSON string literal, the same bytes on CPython and MicroPython."""
    for ch in s:  # iterating allocates nothing; most strings need no escape
        if ch == '"' or ch == "\\" or ch < " ":
            break
    else:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_or_null(s):
    """A JSON string literal, or null for None."""
    return "null" if s is None else json_string(s)
