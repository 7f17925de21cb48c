"""Energy accounting (hanport.energy): hours, days, months and the capacity tariff.

Meter traffic is built from the real frame layouts (host_tests/framebuild.py, the
Aidon, Kaifa and Kamstrup List 3 as recorded in host_tests/data) in compressed time,
decoded by the product's own deframer and decoder, and replayed through
host_tests/energy_replay.py (the same script runs under the WebAssembly MicroPython).
The expected figures come from an independent oracle: Python's zoneinfo
(Europe/Oslo) for the clock, plain sums and sorts for the totals and peaks.
"""
import json
import random
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

import framebuild as fb
from framebuild import aidon_list1, aidon_list3, kaifa_list3, kamstrup_list3, local as _local
from energy_replay import replay
from hanport import localtime as lt
from hanport.energy import Energy
from hanport.reading import Reading
from hexdecode import decode_frame
from mpy import describe

OSLO = ZoneInfo("Europe/Oslo")
UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
STEPS = (2, 5, 10, 15, 20, 25, 50, 75, 100)


# -- frames -------------------------------------------------------------------

def ms_of(u):
    return int((u - T0).total_seconds()) * 1000


def frame_line(ms, frame):
    return "F %d %s" % (ms, frame.hex())


# -- traffic with a known consumption profile -----------------------------------

class Traffic:
    """Hourly List 3 from local midnight `first` for `days` days, with List 1 between.

    hours[i] = (start_utc, (import, export, reactive import, reactive export)) is
    the consumption of the hour that starts at List 3 number i.
    """

    def __init__(self, first, days, seed=1, special=None, make=aidon_list3, list1=2, extra_hours=0):
        rng = random.Random(seed)
        start = datetime(first.year, first.month, first.day, tzinfo=OSLO).astimezone(UTC)
        end = (datetime(first.year, first.month, first.day, tzinfo=OSLO) + timedelta(days=days)).astimezone(UTC)
        # Adding whole days in local time: an aware datetime keeps the wall clock,
        # so `end` is local midnight `days` later even across a DST change.
        n = int((end - start).total_seconds()) // 3600 + extra_hours
        special = special or {}
        self.hours = []
        for i in range(n):
            u = start + i * HOUR
            lo = _local(u)
            imp = special.get((lo.month, lo.day, lo.hour, lo.fold), 10 * rng.randint(20, 190))
            exp = 10 * rng.randint(0, 40) if 10 <= lo.hour <= 15 else 0
            self.hours.append((u, (imp, exp, 10 * rng.randint(0, 30), 10 * rng.randint(0, 8))))
        regs = [12345670, 3210, 456780, 98760]
        self.list3 = []  # (utc, regs at that List 3)
        for i in range(n + 1):
            u = start + i * HOUR
            self.list3.append((u, tuple(regs)))
            if i < n:
                regs = [a + b for a, b in zip(regs, self.hours[i][1])]
        self.make = make
        self.list1 = list1

    def lines(self, drop=(), repeat=()):
        """Script lines; List 3 numbers in drop are lost, those in repeat sent twice."""
        out = []
        for i, (u, regs) in enumerate(self.list3):
            power = self.hours[i][1][0] if i < len(self.hours) else 500
            if i not in drop:
                frame = self.make(u, regs, power)
                out.append(frame_line(ms_of(u) + 10000, frame))
                if i in repeat:
                    out.append(frame_line(ms_of(u) + 12500, frame))
            for k in range(1, self.list1 + 1):
                out.append(frame_line(ms_of(u) + k * 3600000 // (self.list1 + 1), aidon_list1(power)))
        return out


def run(lines):
    got = []
    replay(lines, got.append)
    return got


def parsed(out, kind):
    return [json.loads(line[2:]) for line in out if line.startswith(kind + " ")]


def counters(out):
    last = out[-1]
    assert last.startswith("C ")
    return dict((k, int(v)) for k, v in (p.split("=") for p in last[2:].split()))


# -- the oracle ---------------------------------------------------------------

def text(u):
    return _local(u).strftime("%Y-%m-%dT%H:%M:%S")


def step_of(cap, steps=STEPS):
    for i, s in enumerate(steps):
        if cap <= s * 1000:
            return i + 1
    return len(steps) + 1


def top3(day_max):
    """Three highest days, highest first, a tie to the earlier hour."""
    return sorted(day_max.values(), key=lambda p: (-p[2], p[0], p[1]))[:3]


def capacity_of(day_max):
    peaks = top3(day_max)
    return sum(p[2] for p in peaks) // len(peaks) if peaks else 0


def expected_payload(done, now_u, steps=STEPS, hour_wh=0):
    """<base>/energy right after the List 3 at now_u, `done` the hours closed so far
    ((start_utc, regs delta), all one hour long and since the accounting started)."""
    today = _local(now_u).date()
    month = (today.year, today.month)
    day_max = {}
    t_imp = t_exp = m_imp = m_exp = 0
    for u, (imp, exp, _, _) in done:
        d = _local(u).date()
        if d == today:
            t_imp += imp
            t_exp += exp
        if (d.year, d.month) == month:
            m_imp += imp
            m_exp += exp
            key = d.isoformat()
            if key not in day_max or imp > day_max[key][2]:
                day_max[key] = (key, _local(u).hour, imp)
    peaks = top3(day_max)
    cap = capacity_of(day_max)
    step = step_of(cap, steps)
    if step > len(steps):
        limit = room = None
    else:
        limit = steps[step - 1] * 1000

        def fits(x):
            trial = dict(day_max)
            key = today.isoformat()
            if key not in trial or x > trial[key][2]:
                trial[key] = (key, 0, x)
            return capacity_of(trial) <= limit

        lo, hi = 0, 10 ** 9  # largest x that fits, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        room = max(0, lo - hour_wh)
    return {
        "meter_clock": text(now_u), "hour_start": text(now_u), "hour_import_wh": hour_wh,
        "last_hour_import_wh": done[-1][1][0] if done else None,
        "today_import_wh": t_imp, "today_export_wh": t_exp, "month_import_wh": m_imp, "month_export_wh": m_exp,
        "peaks": [{"date": p[0], "hour": p[1], "wh": p[2]} for p in peaks],
        "capacity_wh": cap, "capacity_step": step, "step_limit_wh": limit, "headroom_wh": room,
    }


def expected_hour(u, delta, hours=1):
    return {"start": text(u), "end": text(u + hours * HOUR), "hours": hours, "import_wh": delta[0],
            "export_wh": delta[1], "reactive_import_varh": delta[2], "reactive_export_varh": delta[3]}


# March 2026: the peaks land on three days, one of them the 23-hour DST day; a second
# high hour on the 5th must not count twice. (month, day, hour, fold) -> Wh.
MARCH_SPECIAL = {(3, 5, 18, 0): 6120, (3, 5, 19, 0): 5980, (3, 12, 8, 0): 5210,
                 (3, 29, 3, 0): 4470, (3, 20, 17, 0): 4400, (4, 1, 0, 0): 2500}


@pytest.fixture(scope="module")
def march():
    return Traffic(datetime(2026, 3, 1), 31, seed=3, special=MARCH_SPECIAL, extra_hours=2)


@pytest.fixture(scope="module")
def march_out(march):
    return run(march.lines())


# -- local time -----------------------------------------------------------------

def test_local_time_matches_zoneinfo_every_quarter_hour_2024_to_2027():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for k in range(4 * 366 * 24 * 4):
        u = start + timedelta(minutes=15 * k)
        um = int(u.timestamp()) // 60
        lo = _local(u)
        lm = lt.to_local(um)
        assert lt.text(lm) == lo.strftime("%Y-%m-%dT%H:%M:00")
        assert lt.parse(lo.strftime("%Y-%m-%dT%H:%M:%S")) == lm
        first, second = lt.candidates(lm)
        assert (first if lo.fold == 0 else second) == um


def test_clock_text_is_checked_and_rounded_to_the_minute():
    assert lt.parse("2026-03-01T13:00:05") == lt.parse("2026-03-01T13:00:00")
    assert lt.parse("2026-03-01T12:59:40") == lt.parse("2026-03-01T13:00:00")
    assert lt.parse("2026-03-01T13:00:29") == lt.parse("2026-03-01T13:00:00")
    for bad in ("2026-02-29T10:00:00", "2026-13-01T10:00:00", "2026-01-01T24:00:00", "2026-01-01 10:00:00",
                "2026-01-01T10:00", "", None, 20260101, "2026-0a-01T10:00:00"):
        assert lt.parse(bad) == -1, bad
    assert lt.parse("2024-02-29T10:00:00") > 0


def test_the_dst_days_of_2026():
    assert lt.date_of(lt.to_local(lt.candidates(lt.parse("2026-03-29T03:00:00"))[0])) == 20260329
    one = lt.candidates(lt.parse("2026-03-29T01:00:00"))[0]
    three = lt.candidates(lt.parse("2026-03-29T03:00:00"))[0]
    assert three - one == 60  # 01:00 -> 03:00 is one real hour
    first, second = lt.candidates(lt.parse("2026-10-25T02:00:00"))
    assert second - first == 60 and lt.candidates(lt.parse("2026-10-25T03:00:00"))[0] - second == 60


# -- a month through real frames ----------------------------------------------------

def test_a_month_of_aidon_frames_gives_exact_hours_days_month_peaks_and_tariff(march, march_out):
    assert not [line for line in march_out if line[0] in "XL"]
    hours = parsed(march_out, "H")
    assert hours == [expected_hour(u, d) for u, d in march.hours]
    assert len(hours) == 31 * 24 - 1 + 2  # the DST day has 23 hours
    payloads = parsed(march_out, "E")
    assert len(payloads) == len(march.list3)
    for i, (u, _) in enumerate(march.list3):
        assert payloads[i] == expected_payload(march.hours[:i], u), text(u)
    # The month as the household sees it at 23:00 on the 31st and at 00:00 on 1 April.
    last_march = payloads[-4]
    assert last_march["meter_clock"] == "2026-03-31T23:00:00"
    assert [p["date"] for p in last_march["peaks"]] == ["2026-03-05", "2026-03-12", "2026-03-29"]
    assert [p["wh"] for p in last_march["peaks"]] == [6120, 5210, 4470]
    assert last_march["peaks"][2]["hour"] == 3  # 03:00 on the 23-hour day
    assert last_march["capacity_wh"] == (6120 + 5210 + 4470) // 3
    assert (last_march["capacity_step"], last_march["step_limit_wh"]) == (3, 10000)
    assert last_march["month_import_wh"] == sum(d[0] for u, d in march.hours
                                                 if _local(u).month == 3) - march.hours[-3][1][0]
    april = payloads[-3]
    assert april["meter_clock"] == "2026-04-01T00:00:00"
    assert (april["today_import_wh"], april["month_import_wh"], april["peaks"]) == (0, 0, [])
    assert (april["capacity_wh"], april["capacity_step"], april["headroom_wh"]) == (0, 1, 2000)
    assert payloads[-2]["peaks"] == [{"date": "2026-04-01", "hour": 0, "wh": 2500}]


def test_23_and_25_hour_days_add_up(march_out):
    hours = parsed(march_out, "H")
    day = [h for h in hours if h["start"].startswith("2026-03-29")]
    assert len(day) == 23
    assert [h["start"][11:13] for h in day[:3]] == ["00", "01", "03"]
    assert day[1]["end"] == "2026-03-29T03:00:00"
    payloads = parsed(march_out, "E")
    closing = [p for p in payloads if p["meter_clock"] == "2026-03-29T23:00:00"][0]
    after = [h for h in hours if h["end"] == "2026-03-30T00:00:00"][0]
    assert closing["today_import_wh"] + after["import_wh"] == sum(h["import_wh"] for h in day)

    october = Traffic(datetime(2026, 10, 24), 3, seed=5)
    out = run(october.lines())
    hours = parsed(out, "H")
    day = [h for h in hours if h["start"].startswith("2026-10-25")]
    assert len(day) == 25
    assert [(h["start"][11:16], h["end"][11:16]) for h in day[1:4]] == [
        ("01:00", "02:00"), ("02:00", "02:00"), ("02:00", "03:00")]
    assert hours == [expected_hour(u, d) for u, d in october.hours]
    payloads = parsed(out, "E")
    for i, (u, _) in enumerate(october.list3):
        assert payloads[i] == expected_payload(october.hours[:i], u), text(u)


@pytest.mark.parametrize("make", [kamstrup_list3, kaifa_list3], ids=["kamstrup", "kaifa"])
def test_kamstrup_and_kaifa_list3_give_the_same_hours(make):
    traffic = Traffic(datetime(2026, 10, 24), 2, seed=7, make=make)
    out = run(traffic.lines())
    assert parsed(out, "H") == [expected_hour(u, d) for u, d in traffic.hours]
    want = expected_payload(traffic.hours, traffic.list3[-1][0])
    want["meter_clock"] = want["meter_clock"][:-2] + ("05" if make is kamstrup_list3 else "10")
    assert parsed(out, "E")[-1] == want


# -- what goes wrong on a real line ------------------------------------------------

def test_a_repeated_list3_is_counted_and_changes_nothing():
    traffic = Traffic(datetime(2026, 10, 24), 2, seed=11)
    # 26 and 27 are the two 02:00 List 3 of 25 October: each repeated as well.
    out = run(traffic.lines(repeat={5, 26, 27, 40}))
    assert counters(out)["repeated"] == 4
    assert parsed(out, "H") == [expected_hour(u, d) for u, d in traffic.hours]
    assert parsed(out, "E") == parsed(run(traffic.lines()), "E")


def test_a_missed_hour_is_one_message_over_the_span_and_never_a_peak():
    special = {(10, 6, 13, 0): 9000, (10, 6, 14, 0): 9000, (10, 6, 15, 0): 3000}
    traffic = Traffic(datetime(2026, 10, 6), 1, seed=13, special=special)
    lost = 14  # the List 3 at 14:00 is lost: 13:00 -> 15:00 is one message of two hours
    out = run(traffic.lines(drop={lost}))
    hours = parsed(out, "H")
    (u, a), (_, b) = traffic.hours[13], traffic.hours[14]
    gap = expected_hour(u, [x + y for x, y in zip(a, b)], hours=2)
    assert gap in hours and gap["import_wh"] == 18000
    assert hours == [expected_hour(u, d) for u, d in traffic.hours[:13]] + [gap] + [
        expected_hour(u, d) for u, d in traffic.hours[15:]]
    assert counters(out)["gap"] == 1
    payloads = parsed(out, "E")
    at15 = payloads[14]
    assert at15["meter_clock"] == "2026-10-06T15:00:00" and at15["last_hour_import_wh"] is None
    assert all(p["wh"] < 9000 for p in payloads[-1]["peaks"])  # the span is never a peak
    done = traffic.hours[:13] + traffic.hours[15:]
    assert payloads[-1]["peaks"] == expected_payload(done, traffic.list3[-1][0])["peaks"]
    # ...but its energy is in the day's and the month's totals.
    assert payloads[-1]["month_import_wh"] == sum(d[0] for _, d in traffic.hours)


def test_a_gap_over_midnight_counts_on_the_day_it_ends():
    traffic = Traffic(datetime(2026, 10, 6), 2, seed=17)
    out = run(traffic.lines(drop=set(range(20, 30))))  # 20:00 on the 6th to 06:00 on the 7th
    hours = parsed(out, "H")
    gap = [h for h in hours if h["hours"] > 1]
    assert len(gap) == 1 and (gap[0]["start"], gap[0]["end"], gap[0]["hours"]) == (
        "2026-10-06T19:00:00", "2026-10-07T06:00:00", 11)
    at6 = [p for p in parsed(out, "E") if p["meter_clock"] == "2026-10-07T06:00:00"][0]
    assert at6["today_import_wh"] == gap[0]["import_wh"]
    assert at6["month_import_wh"] == sum(d[0] for _, d in traffic.hours[:30])


def test_a_register_going_back_restarts_the_accounting(capsys):
    e = Energy(STEPS, log=print)
    clock = datetime(2026, 5, 4, 8, tzinfo=OSLO).astimezone(UTC)
    regs = [5000000, 0, 100, 100]
    outs = []
    for i in range(4):
        outs.append(e.on_reading(read(aidon_list3(clock + i * HOUR, regs)), i))
        regs = [regs[0] + 1000, 0, 100, 100]
    regs = [20, 0, 0, 0]  # a new meter
    outs.append(e.on_reading(read(aidon_list3(clock + 4 * HOUR, regs)), 4))
    assert outs[4] == () and e.counters["reset"] == 1
    assert "register went back" in capsys.readouterr().out
    p = json.loads(e.payload(4))
    assert (p["hour_start"], p["last_hour_import_wh"], p["today_import_wh"]) == ("2026-05-04T12:00:00", None, 3000)
    hour = e.on_reading(read(aidon_list3(clock + 5 * HOUR, [1520, 0, 0, 0])), 5)
    assert json.loads(hour[0])["import_wh"] == 1500
    p = json.loads(e.payload(5))
    assert (p["today_import_wh"], p["month_import_wh"], p["peaks"][0]["wh"]) == (4500, 4500, 1500)


def test_the_meter_clock_set_back_by_days_restarts_and_an_older_list3_is_ignored():
    e = Energy(STEPS, log=lambda m: None)
    u = datetime(2026, 5, 4, 8, tzinfo=OSLO).astimezone(UTC)
    e.on_reading(read(aidon_list3(u, [1000, 0, 0, 0])), 0)
    e.on_reading(read(aidon_list3(u + HOUR, [2000, 0, 0, 0])), 1)
    before = e.dump()
    assert e.on_reading(read(aidon_list3(u, [1000, 0, 0, 0])), 2) == ()  # an old one again
    assert e.counters["stale"] == 1 and e.dump() == before
    e.on_reading(read(aidon_list3(u - 72 * HOUR, [2500, 0, 0, 0])), 3)
    assert e.counters["clock_jump"] == 1
    assert json.loads(e.payload(3))["meter_clock"] == text(u - 72 * HOUR)


def test_a_list3_without_clock_or_register_is_counted_bad():
    e = Energy()
    e.on_reading(Reading("aidon", 3, None, [("1-0:1.8.0.255", 5, 1, "Wh")]), 0)
    e.on_reading(Reading("aidon", 3, None, [("0-0:1.0.0.255", "2026-01-01T10:00:00", None, None)]), 0)
    e.on_reading(Reading("aidon", 3, None, [("0-0:1.0.0.255", None, None, None), ("1-0:1.8.0.255", 5, 1, "Wh")]), 0)
    assert e.counters["bad"] == 3 and e.payload(0) is None and not e.changed


# -- 15-minute metering --------------------------------------------------------------

def test_quarter_hour_list3_add_up_to_the_hour():
    e = Energy(STEPS, log=lambda m: None)
    u = datetime(2026, 10, 25, 1, tzinfo=OSLO).astimezone(UTC)  # across the repeated hour
    regs = [100000, 0, 0, 0]
    hours = []
    per_hour = [0] * 5
    for q in range(4 * 4 + 1):
        hours += e.on_reading(Reading("aidon", 3, None, [
            ("0-0:1.0.0.255", text(u + q * timedelta(minutes=15)), None, None),
            ("1-0:1.8.0.255", regs[0], 0, "Wh")]), q * 900000)
        wh = 100 * (q + 1)
        if q < 16:
            per_hour[q // 4] += wh
        regs[0] += wh
        if q % 4 == 3 and q < 16:
            p = json.loads(e.payload(q * 900000))
            assert p["hour_import_wh"] == per_hour[q // 4] - wh  # three quarters in
    got = [json.loads(h) for h in hours]
    assert [h["import_wh"] for h in got] == per_hour[:4]
    assert [(h["start"][11:16], h["end"][11:16], h["hours"]) for h in got] == [
        ("01:00", "02:00", 1), ("02:00", "02:00", 1), ("02:00", "03:00", 1), ("03:00", "04:00", 1)]


# -- the live estimate -----------------------------------------------------------------

def test_the_current_hour_is_estimated_from_power_and_replaced_by_the_list3():
    e = Energy(STEPS)
    u = datetime(2026, 2, 10, 17, tzinfo=OSLO).astimezone(UTC)
    e.on_reading(read(aidon_list3(u, [1000000, 0, 0, 0], power=3600)), 10000)
    # List 1 every 2.5 s: 3600 W for 20 minutes is 1200 Wh.
    ms = 10000
    for k in range(480):
        ms += 2500
        e.on_reading(read(aidon_list1(3600)), ms)
    p = json.loads(e.payload(ms))
    assert p["hour_import_wh"] == 1200 and p["today_import_wh"] == 1200 and p["month_import_wh"] == 1200
    # Power readings stop: the last one counts for at most 30 s more.
    assert json.loads(e.payload(ms + 20000))["hour_import_wh"] == 1220
    assert json.loads(e.payload(ms + 600000))["hour_import_wh"] == 1230
    # The List 3 replaces the estimate with the meter's own figure.
    hour = e.on_reading(read(aidon_list3(u + HOUR, [1001110, 0, 0, 0], power=3600)), ms + 600000)
    assert json.loads(hour[0])["import_wh"] == 1110
    p = json.loads(e.payload(ms + 600000))
    assert (p["hour_import_wh"], p["last_hour_import_wh"], p["today_import_wh"]) == (0, 1110, 1110)


def test_ticks_that_wrap_around_are_still_a_short_time():
    e = Energy(STEPS)
    u = datetime(2026, 2, 10, 17, tzinfo=OSLO).astimezone(UTC)
    near_wrap = (1 << 30) - 5000
    e.on_reading(read(aidon_list3(u, [1000000, 0, 0, 0], power=3600000)), near_wrap)
    e.on_reading(read(aidon_list1(3600000)), 5000)  # 10 s later, after ticks_ms wrapped
    assert json.loads(e.payload(5000))["hour_import_wh"] == 10000


# -- capacity tariff -------------------------------------------------------------------

def test_headroom_is_what_the_current_hour_may_still_use_before_the_next_step():
    e = Energy(STEPS)
    regs = [0, 0, 0, 0]
    done = []
    profile = [(2, 17, 4000), (3, 17, 4500), (4, 17, 4800), (5, 17, 1000)]
    for day, hour, wh in profile:
        start = datetime(2026, 11, day, hour, tzinfo=OSLO).astimezone(UTC)
        e.on_reading(read(aidon_list3(start, regs)), 0)
        regs = [regs[0] + wh, 0, 0, 0]
        e.on_reading(read(aidon_list3(start + HOUR, regs)), 0)
        done.append((start, (wh, 0, 0, 0)))
    # The gaps between the days were one message each: only the 17:00 hours count.
    p = json.loads(e.payload(0))
    assert [x["wh"] for x in p["peaks"]] == [4800, 4500, 4000]
    assert (p["capacity_wh"], p["capacity_step"], p["step_limit_wh"]) == (4433, 2, 5000)
    # On the 5th (not among the top three): this hour may reach 5000*3+2-4800-4500 = 5702.
    assert p["headroom_wh"] == 5702 - 0
    assert p == expected_payload(done, datetime(2026, 11, 5, 18, tzinfo=OSLO).astimezone(UTC))
    # 3.6 MW for 10 s of List 1 after the List 3: the estimate counts against the room.
    e.on_reading(read(aidon_list1(3600000)), 0)
    e.on_reading(read(aidon_list1(0)), 10000)
    p = json.loads(e.payload(10000))
    assert (p["hour_import_wh"], p["headroom_wh"]) == (10000, 0)


def test_the_open_top_step_has_no_limit_and_no_headroom():
    e = Energy((2, 5))
    u = datetime(2026, 11, 2, 17, tzinfo=OSLO).astimezone(UTC)
    e.on_reading(read(aidon_list3(u, [0, 0, 0, 0])), 0)
    e.on_reading(read(aidon_list3(u + HOUR, [6000, 0, 0, 0])), 0)
    p = json.loads(e.payload(0))
    assert (p["capacity_wh"], p["capacity_step"], p["step_limit_wh"], p["headroom_wh"]) == (6000, 3, None, None)


def test_energy_payload_keys_in_order_and_none_before_list3():
    e = Energy()
    assert e.payload(0) is None
    e.on_reading(read(aidon_list1(500)), 0)
    assert e.payload(0) is None and not e.changed
    u = datetime(2026, 11, 2, 17, tzinfo=OSLO).astimezone(UTC)
    e.on_reading(read(aidon_list3(u, [0, 0, 0, 0])), 0)
    assert e.changed
    keys = re.findall(rb'"([a-z_]+)":', e.payload(0))
    assert keys == [b"meter_clock", b"hour_start", b"hour_import_wh", b"last_hour_import_wh", b"today_import_wh",
                    b"today_export_wh", b"month_import_wh", b"month_export_wh", b"peaks", b"capacity_wh",
                    b"capacity_step", b"step_limit_wh", b"headroom_wh"]
    hour = e.on_reading(read(aidon_list3(u + HOUR, [10, 20, 30, 40])), 0)[0]
    assert hour == (b'{"start":"2026-11-02T17:00:00","end":"2026-11-02T18:00:00","hours":1,"import_wh":10,'
                    b'"export_wh":20,"reactive_import_varh":30,"reactive_export_varh":40}')


# -- persistence -----------------------------------------------------------------------

def after_list3(out):
    return [line for line in out if line[0] in "HE"]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10 ** 6), max_size=8))
def test_a_reboot_anywhere_in_the_month_changes_nothing(march, march_out, points):
    lines = march.lines()
    marks = sorted(p % (len(lines) + 1) for p in points)
    for at in reversed(marks):
        lines.insert(at, "R")
    assert after_list3(run(lines)) == after_list3(march_out)


def test_a_reboot_between_a_list3_and_its_repeat_still_sees_the_repeat():
    traffic = Traffic(datetime(2026, 10, 24), 2, seed=19)
    lines = traffic.lines(repeat={26, 27})
    plain = run(lines)
    for i in range(len(lines) - 1, 0, -1):
        lines.insert(i, "R")
    rebooted = run(lines)
    assert after_list3(rebooted) == after_list3(plain)
    assert counters(plain)["repeated"] == 2  # (counters are per boot: diag, not state)


def test_dump_is_a_short_versioned_line():
    e = Energy()
    fresh = e.dump()
    assert fresh.startswith(b"E1 ") and Energy().restore(fresh)
    u = datetime(2026, 11, 2, 17, tzinfo=OSLO).astimezone(UTC)
    for i in range(3):
        e.on_reading(read(aidon_list3(u + i * HOUR, [12345670 + i * 1000, 0, 0, 0])), 0)
    data = e.dump()
    assert len(data) < 200 and b"\n" not in data
    f = Energy()
    assert f.restore(data) and f.dump() == data and f.payload(0) == e.payload(0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=220))
def test_restoring_garbage_is_refused_and_leaves_a_fresh_state(data):
    e = Energy()
    e.on_reading(read(aidon_list3(datetime(2026, 1, 2, 3, tzinfo=UTC), [10, 0, 0, 0])), 0)
    assert e.restore(data) is False
    assert e.payload(0) is None and e.dump() == Energy().dump() and not e.changed


def test_a_damaged_dump_is_refused(march):
    e = Energy()
    for line in march.lines()[:400]:
        reading, _ = decode_frame(bytes.fromhex(line.split()[2]))
        e.on_reading(reading, 0)
    good = e.dump()
    assert Energy().restore(good)
    rng = random.Random(5)
    for _ in range(300):
        bad = bytearray(good)
        i = rng.randrange(len(bad))
        bad[i] = (bad[i] + rng.randrange(1, 256)) % 256
        f = Energy()
        assert f.restore(bytes(bad)) is False and f.payload(0) is None
    for n in range(len(good)):
        assert Energy().restore(good[:n]) is False
    # Well-formed and checksummed but impossible: refused by the range checks.
    from hanport.crc16 import crc16
    parts = good.rsplit(b" ", 1)[0].split(b" ")
    parts[12] = b"20260231"  # a day that is not the date of the last clock
    body = b" ".join(parts)
    assert Energy().restore(body + b" %04x" % crc16(body)) is False


def read(frame):
    reading, error = decode_frame(frame)
    assert error is None, error
    return reading


# -- MicroPython -------------------------------------------------------------------------

def mpy_script(tmp_path):
    traffic = Traffic(datetime(2026, 10, 23), 10, seed=23, list1=1)
    lines = traffic.lines(drop={30, 31}, repeat={50, 51})
    lines.insert(20, "R")
    lines.insert(41, "P %d" % (ms_of(traffic.list3[20][0]) + 1234567))
    # A new meter on 1 November, then the month rolls over on the new meter.
    u, _ = traffic.list3[-1]
    for i in range(1, 4):
        lines.append(frame_line(ms_of(u + i * HOUR) + 10000, aidon_list3(u + i * HOUR, [i * 1000, 0, 0, 0])))
    path = tmp_path / "energy.script"
    path.write_text("S 2,5,10,15,20,25,50,75,100\n" + "\n".join(lines) + "\n")
    return path


def test_micropython_gives_the_same_bytes(mpy, tmp_path):
    path = mpy_script(tmp_path)
    expected = run(path.read_text().split("\n"))
    assert counters(expected) == {"bad": 0, "clock_jump": 0, "gap": 1, "repeated": 2, "reset": 1, "stale": 0}
    r = mpy("host_tests/energy_replay.py", args=["/energy.script"], files=[(str(path), "/energy.script")],
            timeout=300)
    assert r.returncode == 0, describe(r)
    assert r.stdout.decode().split("\n")[:-1] == expected


HEAP_SCRIPT = """
import gc
base = [0]
keep = []

def loaded_anyway():
    # What the product has loaded anyway: the decoder uses both.
    from hanport import reading, crc16  # noqa: F401
    keep.append(reading)
    keep.append(crc16)

def mark():
    base[0] = gc.mem_alloc()

def load():
    from hanport import energy  # noqa: F401
    keep.append(energy)

def after_import():
    print("import", gc.mem_alloc() - base[0])
    base[0] = gc.mem_alloc()

def month():
    from hanport.energy import Energy
    from hanport.reading import Reading
    e = Energy()
    keep.append(e)
    regs = 12345670
    for d in range(1, 32):
        for h in range(24):
            e.on_reading(Reading("aidon", 3, None, [
                ("0-0:1.0.0.255", "2026-03-%02dT%02d:00:00" % (d, h), None, None),
                ("1-0:1.8.0.255", regs, 0, "Wh"), ("1-0:2.8.0.255", 0, 0, "Wh"),
                ("1-0:3.8.0.255", 0, 0, "varh"), ("1-0:4.8.0.255", 0, 0, "varh")]), 0)
            regs += 1000 + (d * 37 + h * 11) % 900 * 10
            e.on_reading(Reading("aidon", 1, None, [("1-0:1.7.0.255", 2500, 0, "W")]), 10000)
    e.payload(20000)

def after_month():
    print("state", gc.mem_alloc() - base[0])

def per_list1():
    from hanport.reading import Reading
    e = keep[-1]
    readings = [Reading("aidon", 1, None, [("1-0:1.7.0.255", 2500 + k, 0, "W")]) for k in range(100)]
    gc.disable()
    before = gc.mem_alloc()
    for k in range(100):
        e.on_reading(readings[k], 20000 + k * 2500)
    print("list1_alloc", gc.mem_alloc() - before)
    gc.enable()

MPY_STEPS = [loaded_anyway, mark, load, after_import, month, after_month, per_list1]
"""


def test_heap_under_micropython(mpy):
    r = mpy(HEAP_SCRIPT)
    assert r.returncode == 0, describe(r)
    figures = dict(line.split() for line in r.stdout.decode().split("\n") if line)
    imported, state = int(figures["import"]), int(figures["state"])
    print("energy heap under MicroPython: import %d bytes, state after a month %d bytes" % (imported, state))
    assert imported < 11000 and state < 1000  # from source; about 6.8 kB from .mpy
    assert figures["list1_alloc"] == "0"  # integrating power allocates nothing
