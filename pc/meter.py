"""A simulated Aidon 6525 meter for the demo: List 1, 2 and 3 frames with a known
consumption profile and a meter clock that moves one hour at each List 3.

The frames have the layout of the recorded Aidon 6525 frames in
tools/data/aidon_demo.hex (same items, types, scalers and units, the same
meter id), built with pc/frames.py. Only the values differ:
power, currents and registers follow a household's day (night base load,
morning and evening peaks, an electric car charging on some evenings), and the
List 3 clock is the meter's local Norwegian time (daylight saving included).

    m = AidonMeter(start_utc)          # registers start at the recorded ones
    m.list3()                          # List 3 for m.hour (UTC), then m.next_hour()
    m.list1(), m.list2()               # power of the current hour, with some noise
    MeterSource(m, history_hours, hour_every_s)   # a byte source for hanport.app
"""
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from pc.frames import (aidon_item, array, clock, i16, obis, octets, push_frame, structure, u16,
                       u32, visible)

_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

try:
    from zoneinfo import ZoneInfo

    OSLO = ZoneInfo("Europe/Oslo")
except Exception:  # no time zone database (Debian without tzdata): the firmware's own rule
    OSLO = None
BAUD = 2400
BITS_PER_BYTE = 11  # 8E1
SLOT_MS = 2500  # Aidon pushes a list every 2.5 s: List 1, List 2 every 4th slot
HISTORY_GAP_MS = 100  # one history List 3 every 0.1 s at the start

METER_ID = "7359992899161110"
METER_TYPE = "6525"
LIST_VERSION = "AIDON_V0001"
# aidon_6525_it_list3_a: import, export Wh; reactive import, export varh.
START_REGISTERS = (21882340, 0, 333500, 725400)

# Wh imported in each hour of a weekday, local time: a house with electric
# heating in winter, breakfast at 7, dinner at 17-19, a car charging at night.
WEEKDAY = (900, 800, 800, 800, 900, 1100, 2300, 3400, 2600, 1500, 1300, 1300,
           1400, 1300, 1300, 1500, 2600, 4200, 4400, 3300, 2600, 2200, 1700, 1200)
WEEKEND = (1000, 900, 800, 800, 800, 900, 1100, 1600, 2600, 3300, 3100, 2600,
           2400, 2200, 2100, 2300, 2900, 3900, 4100, 3400, 2800, 2300, 1800, 1300)
CAR_WH = 3600  # a car charging adds this to an evening hour now and then


# -- the frames -------------------------------------------------------------

def push(*items):
    """An Aidon push: a data-notification (no date-time) carrying an array of items."""
    return push_frame(array(*items))


def _text(code, s):
    return structure(code, visible(s))


def _clock(lo):
    """COSEM date-time of a local time (deviation unspecified, as Aidon sends it)."""
    return octets(clock(lo.year, lo.month, lo.day, lo.hour, lo.minute, lo.second, lo.isoweekday()))


# -- the meter --------------------------------------------------------------

def local_time(u):
    """Norwegian local time of an aware UTC datetime (naive without a zone database)."""
    if OSLO is not None:
        return u.astimezone(OSLO)
    from hanport import localtime as lt

    t = int(u.timestamp()) // 60
    return (u.astimezone(timezone.utc) + timedelta(minutes=lt.to_local(t) - t)).replace(tzinfo=None)


class AidonMeter:
    """An Aidon 6525 (3-phase IT: currents on L1 and L3) in a house.

    hour: the UTC start of the hour being consumed; the next List 3 closes it.
    """

    def __init__(self, start_utc, seed=2, registers=START_REGISTERS):
        self.hour = start_utc.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        self.regs = list(registers)
        self.rng = random.Random(seed)
        self.noise = random.Random(seed + 1)
        self.wh = self._plan(self.hour)

    def local(self, u=None):
        return local_time(u or self.hour)

    def _plan(self, u):
        """Wh imported in the hour starting at u: the profile, varied from day to day."""
        lo = self.local(u)
        table = WEEKEND if lo.weekday() >= 5 else WEEKDAY
        wh = table[lo.hour] * self.rng.randint(85, 115) // 100
        if lo.hour in (17, 18, 21, 22) and self.rng.random() < 0.15:
            wh += CAR_WH
        return wh // 10 * 10  # Aidon counts in 10 Wh

    def power_w(self):
        """Import power now: the hour's average with a little noise."""
        return max(0, self.wh * self.noise.randint(90, 110) // 100)

    def next_hour(self):
        """Close the hour: the registers move by its consumption."""
        self.regs[0] += self.wh
        self.regs[2] += self.wh // 20 // 10 * 10
        self.regs[3] += 50
        self.hour += timedelta(hours=1)
        self.wh = self._plan(self.hour)

    def _instant(self, p):
        # Voltage sags a little with load; the current follows the power on L1 and L3.
        amps = p * 10 // 2 // 236  # tenths of an ampere on each of L1 and L3
        volts = [2377 - p // 400, 2364 - p // 500, 2368 - p // 450]
        return [
            aidon_item(1, 7, 0, u32(p), 0, 27), aidon_item(2, 7, 0, u32(0), 0, 27),
            aidon_item(3, 7, 0, u32(0), 0, 29), aidon_item(4, 7, 0, u32(86 + p // 40), 0, 29),
            aidon_item(31, 7, 0, i16(amps), -1, 33), aidon_item(71, 7, 0, i16(amps + 13), -1, 33),
            aidon_item(32, 7, 0, u16(volts[0]), -1, 35), aidon_item(52, 7, 0, u16(volts[1]), -1, 35),
            aidon_item(72, 7, 0, u16(volts[2]), -1, 35),
        ]

    def _head(self):
        return [_text(obis(1, 1, 0, 2, 129), LIST_VERSION), _text(obis(0, 0, 96, 1, 0), METER_ID),
                _text(obis(0, 0, 96, 1, 7), METER_TYPE)]

    def list1(self):
        return push(aidon_item(1, 7, 0, u32(self.power_w()), 0, 27))

    def list2(self):
        return push(*(self._head() + self._instant(self.power_w())))

    def list3(self):
        """List 3 at the start of self.hour: the registers as they stand then."""
        r = self.regs
        return push(*(self._head() + self._instant(self.power_w()) + [
            structure(obis(0, 0, 1, 0, 0), _clock(self.local())),
            aidon_item(1, 8, 0, u32(r[0] // 10), 1, 30), aidon_item(2, 8, 0, u32(r[1] // 10), 1, 30),
            aidon_item(3, 8, 0, u32(r[2] // 10), 1, 32), aidon_item(4, 8, 0, u32(r[3] // 10), 1, 32),
        ]))


def default_start(history_hours, now=None):
    """The UTC hour history_hours before the current local hour: after the history the
    meter's clock is at about the real time of day."""
    now = datetime.now(timezone.utc) if now is None else now
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=history_hours)


def schedule(meter, history_hours, hour_every_s):
    """Endless (time_ms, label, frame, paced) of the demo meter.

    First the history: one List 3 every HISTORY_GAP_MS for history_hours hours
    (not paced: a day in seconds). Then the meter's own timing: a slot every
    2.5 s, List 2 in every 4th slot, and a List 3 in the first List 2 slot
    (7.5 s after the history), then in the first one after each further
    hour_every_s, each closing one meter hour. paced: the bytes go
    out at 2400 baud."""
    t = 0
    for _ in range(history_hours):
        yield t, "history list3", meter.list3(), False
        meter.next_hour()
        t += HISTORY_GAP_MS
    t0 = t + 1000
    every = int(hour_every_s * 1000)
    due = 0  # the first List 2 slot after the history: a live hour soon
    k = 0
    while True:
        ts = k * SLOT_MS
        if k % 4 == 3:
            if ts >= due:
                while due <= ts:
                    due += every
                yield t0 + ts, "list3", meter.list3(), True
                meter.next_hour()
            else:
                yield t0 + ts, "list2", meter.list2(), True
        else:
            yield t0 + ts, "list1", meter.list1(), True
        k += 1


class MeterSource:
    """hanport.app's byte source for a schedule: each frame at its time, paced at 2400
    baud (11 bits a byte) when the schedule says so, else handed over at once."""

    def __init__(self, program, start_delay_ms=500, clock=time.monotonic):
        self.program = iter(program)
        self.clock = clock
        self.t0 = clock() + start_delay_ms / 1000
        self.frames_sent = 0
        self._next()

    def _next(self):
        t, self.label, self.frame, self.paced = next(self.program)
        self.frame_t = self.t0 + t / 1000
        self.pos = 0

    def readinto(self, buf):
        now = self.clock()
        if now < self.frame_t:
            return None
        due = len(self.frame)
        if self.paced:
            due = min(due, int((now - self.frame_t) * BAUD / BITS_PER_BYTE) + 1)
        n = min(due - self.pos, len(buf))
        if n <= 0:
            return None
        buf[:n] = self.frame[self.pos:self.pos + n]
        self.pos += n
        if self.pos >= len(self.frame):
            self.frames_sent += 1
            self._next()
        return n
