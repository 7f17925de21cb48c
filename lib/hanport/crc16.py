"""CRC-16/X.25, the HDLC frame check (HCS and FCS).

Reflected polynomial 0x8408, initial value 0xFFFF, final XOR 0xFFFF, sent low
byte first. Check value: crc16(b"123456789") == 0x906E.
"""
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


def crc16(buf, start=0, end=-1):
    """CRC of buf[start:end] (end -1: to the end), without slicing."""
    if end < 0:
        end = len(buf)
    table = TABLE
    crc = 0xFFFF
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc ^ 0xFFFF
