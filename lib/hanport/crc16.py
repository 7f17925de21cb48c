"""CRC-16/X.25, the HDLC frame check (HCS and FCS).

Reflected polynomial 0x8408, initial value 0xFFFF, final XOR 0xFFFF, sent low
byte first. Check value: crc16(b"123456789") == 0x906E.

MicroPython (the device) uses the table-driven crc16_table. CPython has the
same CRC in C as binascii.crc_hqx, only unreflected: reversing the bits of
each byte going in and of the result coming out turns one into the other, so
the PC twin checks frames at C speed.
"""
import sys
from array import array


def _make_table():
    table = array("H", bytes(512))
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table[i] = crc
    return table


TABLE = _make_table()
del _make_table  # used once: free its code on the device


def crc16_table(buf, start=0, end=-1):
    """CRC of buf[start:end] (end -1: to the end), without slicing."""
    if end < 0:
        end = len(buf)
    table = TABLE
    crc = 0xFFFF
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc ^ 0xFFFF


if sys.implementation.name == "micropython":
    crc16 = crc16_table
else:
    from binascii import crc_hqx

    _REVERSED = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))

    def crc16(buf, start=0, end=-1):
        if end < 0:
            end = len(buf)
        crc = crc_hqx(bytes(buf[start:end]).translate(_REVERSED), 0xFFFF)
        return ((_REVERSED[crc & 0xFF] << 8) | _REVERSED[crc >> 8]) ^ 0xFFFF
