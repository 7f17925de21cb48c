"""A-XDR reader for DLMS data-notification bodies (IEC 62056-6-2).

A cursor over a buffer: each read checks the bound and raises
DecodeError("axdr") instead of running off the end. Integers are decoded
with arithmetic, not int.from_bytes (MicroPython ignores its signed flag).
"""

# A-XDR tags
NULL = 0x00
ARRAY = 0x01
STRUCTURE = 0x02
BOOLEAN = 0x03
OCTET_STRING = 0x09
VISIBLE_STRING = 0x0A
UTF8_STRING = 0x0C
INT8 = 0x0F
ENUM = 0x16
FLOAT32 = 0x17
FLOAT64 = 0x18
DATE_TIME = 0x19

# Size in bytes of the integer types, indexed by tag: int32 (05), uint32 (06),
# int8 (0F), int16 (10), uint8 (11), uint16 (12), int64 (14), uint64 (15),
# enum (16). Zero: not a fixed-size integer.
_SIZES = b"\x00\x00\x00\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x01\x02\x00\x08\x08\x01"
_SIGNED = (0x05, 0x0F, 0x10, 0x14)


class DecodeError(Exception):
    """args[0] names what was wrong: axdr, apdu, encrypted, unknown_list, ..."""


class Octets:
    """An octet-string: where it lies in the buffer, read on demand."""

    def __init__(self, buf, start, length):
        self.buf = buf
        self.start = start
        self.length = length


class Scaled:
    """value x 10**scaler: a float the meter sent, as an exact decimal.

    value is None for a NaN or an infinity: that item is void (null), the
    frame is not.
    """

    def __init__(self, value, scaler):
        self.value = value
        self.scaler = scaler


NOT_FINITE = Scaled(None, 0)
# A date-time value (tag 0x19) whose date is not specified: the item stays, as null.
NO_DATE = Octets(b"", 0, 0)


def exact_float(bits, exp_bits, frac_bits):
    """An IEEE 754 number from its bits, with integers only: m x 2**e = m x 5**-e / 10**-e."""
    top = (1 << exp_bits) - 1
    e = (bits >> frac_bits) & top
    m = bits & ((1 << frac_bits) - 1)
    if e == top:
        return NOT_FINITE  # infinity or NaN: this item is void, not the frame
    if e:
        m |= 1 << frac_bits
    else:
        e = 1  # subnormal
    e -= (top >> 1) + frac_bits
    if e >= 0:
        value, scaler = m << e, 0
    else:
        value, scaler = m * 5 ** -e, e
        while scaler < 0 and value % 10 == 0:
            value //= 10
            scaler += 1
    if bits >> (exp_bits + frac_bits):
        value = -value
    return Scaled(value, scaler)


class Reader:
    def __init__(self, buf, pos=0, end=-1):
        self.buf = buf
        self.p = pos
        self.end = len(buf) if end < 0 else end

    def at_end(self):
        return self.p >= self.end

    def u8(self):
        p = self.p
        if p >= self.end:
            raise DecodeError("axdr")
        self.p = p + 1
        return self.buf[p]

    def peek(self, offset=0):
        p = self.p + offset
        if p >= self.end:
            raise DecodeError("axdr")
        return self.buf[p]

    def skip(self, n):
        if self.p + n > self.end:
            raise DecodeError("axdr")
        self.p += n

    def uint(self, n):
        if self.p + n > self.end:
            raise DecodeError("axdr")
        buf = self.buf
        v = 0
        for i in range(self.p, self.p + n):
            v = (v << 8) | buf[i]
        self.p += n
        return v

    def length(self):
        """A length or count: one byte, or 0x81/0x82 and then 1 or 2 bytes."""
        n = self.u8()
        if n < 0x80:
            return n
        if n == 0x81:
            return self.u8()
        if n == 0x82:
            return self.uint(2)
        raise DecodeError("axdr")

    def expect(self, tag):
        """Read a compound tag and its count."""
        if self.u8() != tag:
            raise DecodeError("axdr")
        return self.length()

    def value(self):
        """One scalar value: int, str, bool, None, Octets or Scaled.

        Arrays and structures are the caller's to walk. Float types become
        Scaled (exact decimals): nothing on the path to MQTT is a float.
        """
        buf = self.buf
        p = self.p
        if p >= self.end:
            raise DecodeError("axdr")
        tag = buf[p]
        # The fixed-size integers, inlined: they are most of every list.
        size = _SIZES[tag] if tag < 0x17 else 0
        if size:
            q = p + 1 + size
            if q > self.end:
                raise DecodeError("axdr")
            v = 0
            for i in range(p + 1, q):
                v = (v << 8) | buf[i]
            self.p = q
            if tag in _SIGNED and v >= 1 << (8 * size - 1):
                v -= 1 << (8 * size)
            return v
        self.p = p + 1
        if tag == OCTET_STRING:
            n = self.length()
            start = self.p
            self.skip(n)
            return Octets(buf, start, n)
        if tag == VISIBLE_STRING or tag == UTF8_STRING:
            n = self.length()
            start = self.p
            self.skip(n)
            return utf8_text(buf, start, n)
        if tag == NULL:
            return None
        if tag == BOOLEAN:
            return self.u8() != 0
        if tag == FLOAT32:
            return exact_float(self.uint(4), 8, 23)
        if tag == FLOAT64:
            return exact_float(self.uint(8), 11, 52)
        if tag == DATE_TIME:
            self.skip(12)
            t = datetime_text(buf, self.p - 12, True)
            return NO_DATE if t is None else t
        raise DecodeError("axdr")


def printable(buf, start, n):
    for i in range(start, start + n):
        c = buf[i]
        if c < 0x20 or c > 0x7E:
            return False
    return True


def text(buf, start, n):
    """Printable ASCII as text; anything else as hex (meters put ids in octet-strings)."""
    if printable(buf, start, n):
        return bytes(buf[start:start + n]).decode()
    return hex_text(buf, start, n)


def utf8_text(buf, start, n):
    """A visible-string or utf8-string: its text when it is UTF-8 without control
    characters, else hex."""
    if printable(buf, start, n):
        return bytes(buf[start:start + n]).decode()
    for i in range(start, start + n):
        c = buf[i]
        if c < 0x20 or c == 0x7F:
            return hex_text(buf, start, n)
    try:
        return bytes(buf[start:start + n]).decode()  # strict on CPython and MicroPython
    except UnicodeError:
        return hex_text(buf, start, n)


_HEX = "0123456789abcdef"


def hex_text(buf, start, n):
    out = []
    for i in range(start, start + n):
        c = buf[i]
        out.append(_HEX[c >> 4])
        out.append(_HEX[c & 15])
    return "".join(out)


def datetime_text(buf, p, partial=False):
    """The 12-byte COSEM date-time at p as YYYY-MM-DDTHH:MM:SS, or None if unspecified.

    Deviation and clock status are ignored; the meters send local time.
    partial: a time of day left unspecified (0xFF) still gives the date
    ("YYYY-MM-DD" without an hour, minutes and seconds as 00 when only they
    are missing); None only when the date itself is not specified.
    """
    year = (buf[p] << 8) | buf[p + 1]
    month = buf[p + 2]
    day = buf[p + 3]
    hour = buf[p + 5]
    minute = buf[p + 6]
    second = buf[p + 7]
    if year == 0xFFFF or not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    if hour > 23 or minute > 59:
        if not partial:
            return None
        if hour > 23:
            return "%04d-%02d-%02d" % (year, month, day)
        minute = 0
    if second > 59:
        second = 0  # 0xFF: not specified
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (year, month, day, hour, minute, second)


def is_datetime(buf, p):
    """Could the 12 bytes at p be a COSEM date-time? Month, day, hour, minute and
    second in range or 0xFF (0xFD/0xFE: the DST and last-day markers)."""
    month = buf[p + 2]
    day = buf[p + 3]
    return ((1 <= month <= 12 or month >= 0xFD) and (1 <= day <= 31 or day >= 0xFD)
            and (buf[p + 5] <= 23 or buf[p + 5] == 0xFF) and (buf[p + 6] <= 59 or buf[p + 6] == 0xFF)
            and (buf[p + 7] <= 59 or buf[p + 7] == 0xFF))


_OBIS_TEXT = {}  # C.D.E -> (A.B.F, text): a meter repeats the same few codes
_OBIS_CACHED = 64  # bounded, so a stream of made-up codes cannot grow it


def obis_text(buf, p):
    """The 6-byte OBIS code at p as text, e.g. "1-0:1.7.0.255".

    Formatted once per code: formatting allocates ~60 bytes on MicroPython,
    and the keys are small ints, so a lookup allocates nothing.
    """
    cde = (buf[p + 2] << 16) | (buf[p + 3] << 8) | buf[p + 4]
    abf = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 5]
    known = _OBIS_TEXT.get(cde)
    if known is not None and known[0] == abf:
        return known[1]
    text = "%d-%d:%d.%d.%d.%d" % (buf[p], buf[p + 1], buf[p + 2], buf[p + 3], buf[p + 4], buf[p + 5])
    if known is not None or len(_OBIS_TEXT) < _OBIS_CACHED:
        _OBIS_TEXT[cde] = (abf, text)
    return text
