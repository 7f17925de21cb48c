"""Whole HAN lists for the variants the recorded corpus lacks, built with
pc/frames.py (which the tests also use directly, through this module)."""
from zoneinfo import ZoneInfo

from pc.frames import (  # noqa: F401  (re-exported for the tests)
    LLC, NULL, aidon_item, array, clock, hdlc_frame, i16, i32, length, notification, obis,
    octets, push_frame, scaler_unit, structure, u16, u32, visible)

OSLO = ZoneInfo("Europe/Oslo")  # the meters' clock is Norwegian local time


# -- whole lists, as the meters send them (u: a UTC datetime of the meter clock) --

def local(u):
    """A UTC datetime as Oslo local time (the meters' clock)."""
    return u.astimezone(OSLO)


def meter_clock(u, second=0):
    lo = local(u)
    return clock(lo.year, lo.month, lo.day, lo.hour, lo.minute, second)


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
