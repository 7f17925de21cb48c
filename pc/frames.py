"""HDLC frames and A-XDR values built from their parts, for the simulated meter
and the tests.

Written from the protocol notes (../shared/notes/han-protocol.md), with a
bitwise CRC of its own, so that nothing built here checks the decoder's CRC
against itself.

    push_frame(array(aidon_item(1, 7, 0, u32(1500), 0, 27)))   # an Aidon List 1
"""
import struct


def crc_x25(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def hdlc_frame(info, segmented=False, dest=b"\x41", src=b"\x08\x83", control=0x13):
    """One type 3 frame around an information field, flags included. The
    defaults are the addresses and control byte Aidon sends."""
    length = 2 + len(dest) + len(src) + 1 + 2 + len(info) + 2
    assert length < 0x800, "frame format type 3 states at most 2047 bytes"
    fmt = 0xA000 | (0x0800 if segmented else 0) | length
    header = struct.pack(">H", fmt) + dest + src + bytes([control])
    header += struct.pack("<H", crc_x25(header))
    body = header + info
    return b"\x7e" + body + struct.pack("<H", crc_x25(body)) + b"\x7e"


LLC = b"\xe6\xe7\x00"


def notification(body, header_time=b"\x00"):
    """Data-notification APDU: tag, invoke id, date-time, body."""
    return b"\x0f\x40\x00\x00\x00" + header_time + body


def push_frame(body, header_time=b"\x00"):
    return hdlc_frame(LLC + notification(body, header_time))


# -- A-XDR values -------------------------------------------------------------

def length(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def array(*elements):
    return b"\x01" + length(len(elements)) + b"".join(elements)


def structure(*elements):
    return b"\x02" + length(len(elements)) + b"".join(elements)


def octets(data):
    return b"\x09" + length(len(data)) + data


def visible(text):
    data = text.encode()
    return b"\x0a" + length(len(data)) + data


def obis(a, b, c, d, e, f=255):
    return octets(bytes([a, b, c, d, e, f]))


def u32(v):
    return b"\x06" + struct.pack(">I", v)


def i32(v):
    return b"\x05" + struct.pack(">i", v)


def u16(v):
    return b"\x12" + struct.pack(">H", v)


def i16(v):
    return b"\x10" + struct.pack(">h", v)


def i8(v):
    return b"\x0f" + struct.pack(">b", v)


def enum(v):
    return b"\x16" + bytes([v])


NULL = b"\x00"


def scaler_unit(scaler, unit):
    return structure(i8(scaler), enum(unit))


def clock(year, month, day, hour, minute, second, weekday=0xFF):
    """COSEM date-time, deviation unspecified (as the Norwegian meters send it)."""
    return struct.pack(">HBBBBBBBhB", year, month, day, weekday, hour, minute, second, 0xFF, -32768, 0)


def aidon_item(c, d, e, value, scaler, unit):
    """An Aidon register: its OBIS code 1.0.c.d.e, value and scaler-unit."""
    return structure(obis(1, 0, c, d, e), value, scaler_unit(scaler, unit))
