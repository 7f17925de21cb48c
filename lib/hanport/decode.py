"""From an APDU (the information field after the LLC header) to a Reading.

Recognises the DLMS data-notification (tag 0x0F) and hands its body to the
layout it has: an array of OBIS structures (Aidon, and any meter that names
its values), a structure of OBIS/value pairs (Kamstrup), or a structure of
bare values whose position gives the meaning (Kaifa).
"""
from hanport.axdr import (
    ARRAY,
    NULL,
    OCTET_STRING,
    STRUCTURE,
    VISIBLE_STRING,
    DecodeError,
    Reader,
    datetime_text,
)

DATA_NOTIFICATION = 0x0F
# Ciphered APDUs: general-glo-ciphering, general-ded-ciphering.
CIPHERED = (0xDB, 0xDC)

ERRORS = ("apdu", "encrypted", "axdr", "unknown_list")


def decode(apdu):
    """Reading for one APDU; raises DecodeError naming what was wrong."""
    r = Reader(apdu)
    tag = r.u8()
    if tag in CIPHERED:
        raise DecodeError("encrypted")
    if tag != DATA_NOTIFICATION:
        raise DecodeError("apdu")
    r.skip(4)  # long-invoke-id-and-priority
    apdu_time = _header_time(r)
    # Each layout is imported when first seen: a dongle holds only the one
    # its meter uses in RAM.
    tag = r.peek()
    if tag == ARRAY:
        from hanport import obis_array as layout
    elif tag == STRUCTURE and _pairs_follow(r):
        from hanport import kamstrup as layout
    elif tag == STRUCTURE:
        from hanport import kaifa as layout
    else:
        raise DecodeError("unknown_list")
    reading = layout.decode(r)
    if not r.at_end():
        raise DecodeError("axdr")
    reading.apdu_time = apdu_time
    return reading


def _header_time(r):
    """The notification's date-time: absent (00), 09 0C + 12 bytes, or 0C + 12 bytes."""
    tag = r.u8()
    if tag == 0x00:
        return None
    if tag == OCTET_STRING:
        tag = r.u8()
    if tag != 0x0C:
        raise DecodeError("axdr")
    r.skip(12)
    return datetime_text(r.buf, r.p - 12)


def _pairs_follow(r):
    """Is the structure a version string followed by OBIS code (09 06) / value pairs?"""
    save = r.p
    try:
        r.expect(STRUCTURE)
        if r.peek() != VISIBLE_STRING:
            return False
        r.value()
        while r.peek() == NULL:  # padding (null code, null value) before the first pair
            r.p += 1
            r.value()
        return r.peek() == OCTET_STRING and r.peek(1) == 6
    except DecodeError:
        return False
    finally:
        r.p = save


class Decoder:
    """decode() with named error counters, for a stream that must go on.

    last_error names what was wrong with the last APDU (None if it decoded).
    """

    def __init__(self):
        self.errors = {}
        for name in ERRORS:
            self.errors[name] = 0
        self.readings = 0
        self.last_error = None

    def decode(self, apdu):
        try:
            reading = decode(apdu)
        except DecodeError as e:
            name = e.args[0] if e.args and e.args[0] in self.errors else "axdr"
        except (IndexError, ValueError, TypeError, KeyError, UnicodeError):
            name = "axdr"  # a malformed body that slipped past the bound checks
        else:
            self.readings += 1
            self.last_error = None
            return reading
        self.errors[name] += 1
        self.last_error = name
        return None
