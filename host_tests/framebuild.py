"""Build HAN frames for the variants the recorded corpus lacks.

Written from the protocol notes (../shared/notes/han-protocol.md), with its
own bitwise CRC so that the tests do not check the decoder's CRC against
itself.
"""
import struct
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")  # the meters' clock is Norwegian local time


def crc_x25(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def hdlc_frame(info, segmented=False, dest=b"\x41", src=b"\x08\x83", control=0x13):
    """One type 3 frame around an information field, flags included."""
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


# A-XDR encoders
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
    return struct.pack(">HBBBBBBBhB", year, month, day, weekday, hour, minute, second, 0xFF, -32768, 0)


# -- whole lists, as the meters send them (u: a UTC datetime of the meter clock) --

def local(u):
    """A UTC datetime as Oslo local time (the meters' clock)."""
    return u.astimezone(OSLO)


def meter_clock(u, second=0):
    lo = local(u)
    return clock(lo.year, lo.month, lo.day, lo.hour, lo.minute, second)


def aidon_item(c, d, e, value, scaler, unit):
    return structure(obis(1, 0, c, d, e), value, scaler_unit(scaler, unit))


def _aidon_list2_items(power):
    return (
        structure(obis(1, 1, 0, 2, 129), visible("AIDON_V0001")),
        structure(obis(0, 0, 96, 1, 0), visible("7359992899161110")),
        structure(obis(0, 0, 96, 1, 7), visible("6525")),
        aidon_item(1, 7, 0, u32(power), 0, 27),
        aidon_item(2, 7, 0, u32(0), 0, 27),
        aidon_item(3, 7, 0, u32(0), 0, 29),
        aidon_item(4, 7, 0, u32(135), 0, 29),
        aidon_item(31, 7, 0, i16(48), -1, 33),
        aidon_item(71, 7, 0, i16(69), -1, 33),
        aidon_item(32, 7, 0, u16(2377), -1, 35),
        aidon_item(52, 7, 0, u16(2364), -1, 35),
        aidon_item(72, 7, 0, u16(2368), -1, 35),
    )


def aidon_list2(power=1500):
    """Aidon 6525 List 2: List 3 without the clock and the energy registers."""
    return push_frame(array(*_aidon_list2_items(power)))


def aidon_list3(u, regs, power=1500, second=0):
    """Aidon 6525 List 3 (as aidon_6525_it_list3_a): registers in 10 Wh units (scaler 1)."""
    assert all(r % 10 == 0 for r in regs)
    return push_frame(array(
        *_aidon_list2_items(power),
        structure(obis(0, 0, 1, 0, 0), octets(meter_clock(u, second))),
        aidon_item(1, 8, 0, u32(regs[0] // 10), 1, 30),
        aidon_item(2, 8, 0, u32(regs[1] // 10), 1, 30),
        aidon_item(3, 8, 0, u32(regs[2] // 10), 1, 32),
        aidon_item(4, 8, 0, u32(regs[3] // 10), 1, 32),
    ))


def aidon_list1(power):
    """Aidon List 1: active power import alone."""
    return push_frame(array(aidon_item(1, 7, 0, u32(power), 0, 27)))


def kamstrup_list3(u, regs, power=2531):
    """Kamstrup Omnipower List 3 (as kamstrup_3ph_hourly_xibriz): B=1, 10 Wh units, clock at :05."""
    def pair(c, d, e, value):
        return obis(1, 1, c, d, e) + value

    elements = [
        visible("Kamstrup_V0001"),
        pair(0, 0, 5, octets(b"5706567274389702")),
        pair(96, 1, 1, octets(b"6841121BN243101040")),
        pair(1, 7, 0, u32(power)), pair(2, 7, 0, u32(0)), pair(3, 7, 0, u32(0)), pair(4, 7, 0, u32(440)),
        pair(31, 7, 0, u32(996)), pair(51, 7, 0, u32(207)), pair(71, 7, 0, u32(965)),
        pair(32, 7, 0, u16(231)), pair(52, 7, 0, u16(226)), pair(72, 7, 0, u16(232)),
        obis(0, 1, 1, 0, 0) + octets(meter_clock(u, 5)),
        pair(1, 8, 0, u32(regs[0] // 10)), pair(2, 8, 0, u32(regs[1] // 10)),
        pair(3, 8, 0, u32(regs[2] // 10)), pair(4, 8, 0, u32(regs[3] // 10)),
    ]
    return push_frame(b"\x02" + bytes([35]) + b"".join(elements), octets(meter_clock(u, 5)))


def kaifa_list3(u, regs, power=1086):
    """Kaifa MA304H4 List 3 (as kaifa_ma304h4_list3_karlgustav): Wh, clock at :10."""
    body = structure(
        octets(b"KFM_001"), octets(b"6970631401468803"), octets(b"MA304H4"),
        u32(power), u32(0), u32(0), u32(551),
        i32(3159), i32(1812), i32(742), u32(2411), u32(2439), u32(2429),
        octets(meter_clock(u, 10)), u32(regs[0]), u32(regs[1]), u32(regs[2]), u32(regs[3]),
    )
    return push_frame(body, octets(meter_clock(u, 10)))
