"""Turning A-XDR values into reading items, shared by the meter layouts."""
from hanport.axdr import NO_DATE, Octets, Scaled, datetime_text, is_datetime, printable, text

CLOCK_KEY = 0x010000  # C.D.E = 1.0.0: the meter clock


def key(buf, p):
    """OBIS C.D.E as one small int: a dict key that allocates nothing."""
    return (buf[p + 2] << 16) | (buf[p + 3] << 8) | buf[p + 4]


def make(obis, value, scaler, unit, clock=False):
    """(obis, value, scaler, unit), or None for null-data (padding)."""
    if type(value) is int:  # most values: checked first
        return (obis, value, scaler or 0, unit)
    if value is None:
        return None
    if value is NO_DATE:
        return (obis, None, None, None)  # a date-time without a date: kept, as null
    if isinstance(value, Octets):
        buf = value.buf
        start = value.start
        n = value.length
        if n == 12:
            if clock:  # the meter clock: full date and time, or None
                return (obis, datetime_text(buf, start), None, None)
            if not printable(buf, start, n) and is_datetime(buf, start):
                return (obis, datetime_text(buf, start, True), None, None)
        return (obis, text(buf, start, n), None, None)
    if isinstance(value, Scaled):
        return (obis, value.value, value.scaler + (scaler or 0), unit)
    return (obis, value, None, None)  # text or boolean
