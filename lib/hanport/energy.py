"""Hourly energy, today and this month, and the capacity tariff, from List 3.

Driven only by the meter's own clock (the List 3 clock item, local Norwegian
time), never by the dongle's. Everything is integer Wh. See README.md,
"<base>/hour" and "<base>/energy", for the rules in user words.

    e = Energy(steps_kwh=(2, 5, 10, 15, 20, 25, 50, 75, 100))
    for payload in e.on_reading(reading, now_ms):   # hour messages closed by it
        publish(base + "/hour", payload)
    if e.changed: storage.write("energy", e.dump()); e.changed = False
    publish(base + "/energy", e.payload(now_ms))     # None before the first List 3

Times are minutes (hanport.localtime): _t and _ht are UTC minutes.
"""
from hanport import localtime as lt
from hanport.crc16 import crc16

MS_PER_H = 3600000
HOLD_MS = 30000  # a power reading counts for at most this long (frames lost: no guess)
TICKS = 0x3FFFFFFF  # ticks_ms wraps at 2**30 on MicroPython; a difference masked
VERSION = "E1"

_REGS = (":1.8.0.", ":2.8.0.", ":3.8.0.", ":4.8.0.")  # C.D.E of the four registers
_NONE = ()  # on_reading's usual answer: no hour closed, nothing allocated


def _scaled(value, scaler):
    if scaler is None or scaler == 0:
        return value
    if scaler > 0:
        return value * 10 ** scaler
    return value // 10 ** -scaler


def _num(n):
    return "null" if n < 0 else str(n)


class Energy:
    def __init__(self, steps_kwh=(2, 5, 10, 15, 20, 25, 50, 75, 100), log=print):
        self.steps = tuple(steps_kwh)
        self.log = log
        self.counters = {"repeated": 0, "stale": 0, "gap": 0, "reset": 0, "clock_jump": 0, "bad": 0}
        self.changed = False
        self._fresh()

    def _fresh(self):
        self._t = -1  # UTC minute of the last List 3; -1: none yet
        self._clock = None  # its clock text, as the meter sent it
        self._r = [0, 0, 0, 0]  # its registers: import, export Wh; reactive import, export varh
        self._ht = -1  # UTC minute the current hour started (a List 3 on the hour); -1: unknown
        self._h = [0, 0, 0, 0]  # registers at that start
        self._day = 0  # local date yyyymmdd the totals are for
        self._dimp = self._dexp = self._mimp = self._mexp = 0
        self._last_hour = -1  # import of the last closed one-hour period; -1: none
        self._pk = [0, -1, 0, -1, 0, -1]  # 3 x (day*100 + hour, Wh); Wh -1: empty
        self._live_reset(-1)
        self._pw_i = self._pw_e = 0  # last import/export power, W

    def _live_reset(self, now_ms):
        self._ms = now_ms  # ticks of the last power reading; -1: none
        self._acc_i = self._acc_e = 0  # W*ms below one Wh
        self._wh_i = self._wh_e = 0  # Wh integrated since the last List 3

    # -- readings ---------------------------------------------------------

    def on_reading(self, reading, now_ms):
        """Hour payloads (bytes) closed by this reading: usually none (an empty tuple)."""
        if reading.list == 3:
            return self._list3(reading, now_ms)
        if reading.list == 1 or reading.list == 2:
            pi = pe = -1
            for item in reading.items:
                v = item[1]
                if type(v) is not int:
                    continue
                o = item[0]
                if ":1.7.0." in o:
                    pi = _scaled(v, item[2])
                elif ":2.7.0." in o:
                    pe = _scaled(v, item[2])
            if pi >= 0 or pe >= 0:
                self._power(now_ms, True)
                if pi >= 0:
                    self._pw_i = pi
                if pe >= 0:
                    self._pw_e = pe
        return _NONE

    def _power(self, now_ms, keep):
        """Wh integrated from power since the last List 3, up to now_ms: kept (and the
        tuple not made, so a List 1 allocates nothing) or returned as (import, export)."""
        d = 0
        if self._ms >= 0:
            d = (now_ms - self._ms) & TICKS
            if d > HOLD_MS:
                d = HOLD_MS
        ai = self._acc_i + self._pw_i * d
        ae = self._acc_e + self._pw_e * d
        if keep:
            self._wh_i += ai // MS_PER_H
            self._acc_i = ai % MS_PER_H
            self._wh_e += ae // MS_PER_H
            self._acc_e = ae % MS_PER_H
            self._ms = now_ms
            return None
        return self._wh_i + ai // MS_PER_H, self._wh_e + ae // MS_PER_H

    def _list3(self, reading, now_ms):
        clock = None
        regs = [-1, -1, -1, -1]
        pi = pe = -1
        for item in reading.items:
            v = item[1]
            o = item[0]
            if type(v) is str:
                if ":1.0.0." in o:
                    clock = v
                continue
            if type(v) is not int:
                continue
            if ".8.0." in o:
                for k in range(4):
                    if _REGS[k] in o:
                        regs[k] = _scaled(v, item[2])
            elif ":1.7.0." in o:
                pi = _scaled(v, item[2])
            elif ":2.7.0." in o:
                pe = _scaled(v, item[2])
        lm = lt.parse(clock)
        if lm < 0 or regs[0] < 0:
            self.counters["bad"] += 1
            return _NONE
        last = self._r
        for k in range(4):  # a register the meter leaves out does not move
            if regs[k] < 0:
                regs[k] = last[k] if self._t >= 0 else 0
        t, other = lt.candidates(lm)
        if other >= 0 and self._t >= t and not (self._t == t and regs == last):
            t = other  # the repeated October hour, second pass (standard time)
        out = _NONE
        if self._t < 0:
            self._start(t, regs)
        elif t <= self._t:
            if t == self._t and regs == last:
                self.counters["repeated"] += 1
                return _NONE
            if t + lt.DAY >= self._t or not _not_below(regs, last):
                self.counters["stale"] += 1  # an older List 3 sent again
                return _NONE
            # The meter's clock was set back by more than a day: start again from here.
            self.counters["clock_jump"] += 1
            self.log("energy: the meter's clock went back: restarted at " + clock)
            self._start(t, regs)
        elif not _not_below(regs, last):
            self.counters["reset"] += 1  # a register went back: a new meter
            self.log("energy: a register went back (meter replaced?): restarted at " + clock)
            self._start(t, regs)
        else:
            out = self._advance(t, regs)
        self._clock = clock
        self._live_reset(now_ms)
        if pi >= 0:
            self._pw_i = pi
        if pe >= 0:
            self._pw_e = pe
        self.changed = True
        return out

    def _start(self, t, regs):
        """(Re)start the accounting at this List 3; today's and the month's totals stay."""
        self._t = t
        self._r = regs
        self._ht = t if t % 60 == 0 else -1
        self._h = list(regs)
        self._last_hour = -1
        self._roll(lt.date_of(lt.to_local(t)))

    def _advance(self, t, regs):
        """A period from the last List 3 to this one: totals, and the hour if it closes."""
        last = self._r
        # The period counts on the local day it ends in (a period ending at 00:00 on the
        # day before); a gap over midnight counts on the day it ends.
        self._roll(lt.date_of(lt.to_local(t - 1)))
        di = regs[0] - last[0]
        de = regs[1] - last[1]
        self._dimp += di
        self._dexp += de
        self._mimp += di
        self._mexp += de
        out = _NONE
        if t % 60 == 0:
            if self._ht >= 0:
                ht = self._ht
                h = self._h
                hours = (t - ht) // 60
                imp = regs[0] - h[0]
                out = [
                    (
                        '{"start":"%s","end":"%s","hours":%d,"import_wh":%d,"export_wh":%d,'
                        '"reactive_import_varh":%d,"reactive_export_varh":%d}'
                        % (lt.text(lt.to_local(ht)), lt.text(lt.to_local(t)), hours, imp,
                           regs[1] - h[1], regs[2] - h[2], regs[3] - h[3])
                    ).encode()
                ]
                if hours == 1:
                    # self._day is the hour's local date (rolled to it above)
                    self._peak(self._day % 100 * 100 + lt.to_local(ht) % lt.DAY // 60, imp)
                    self._last_hour = imp
                else:
                    self.counters["gap"] += 1  # never an hour's figure, never a peak
                    self._last_hour = -1
            self._ht = t
            self._h = list(regs)
        self._t = t
        self._r = regs
        self._roll(lt.date_of(lt.to_local(t)))
        return out

    def _roll(self, day):
        """Move the totals to local date day (yyyymmdd): a new day, maybe a new month."""
        if day != self._day:
            if day // 100 != self._day // 100:
                self._mimp = self._mexp = 0
                self._pk = [0, -1, 0, -1, 0, -1]
            self._dimp = self._dexp = 0
            self._day = day

    def _peak(self, key, wh):
        """An hour (key day*100 + hour) of wh: keep each day's highest, the top three days."""
        pk = self._pk
        dd = key // 100
        for i in (0, 2, 4):
            if pk[i + 1] >= 0 and pk[i] // 100 == dd:
                if wh > pk[i + 1]:
                    pk[i] = key
                    pk[i + 1] = wh
                return
        j = 0
        for i in (2, 4):
            if pk[i + 1] < pk[j + 1]:
                j = i
        if wh > pk[j + 1]:
            pk[j] = key
            pk[j + 1] = wh

    # -- figures ----------------------------------------------------------

    def payload(self, now_ms):
        """<base>/energy JSON bytes, or None before the first List 3."""
        if self._t < 0:
            return None
        si, se = self._power(now_ms, False)
        if self._ht >= 0:
            hour = self._r[0] - self._h[0] + si
            start = '"' + lt.text(lt.to_local(self._ht)) + '"'
        else:
            hour = -1
            start = "null"
        pk = self._pk
        got = [(pk[i + 1], -pk[i]) for i in (0, 2, 4) if pk[i + 1] >= 0]
        got.sort(reverse=True)  # highest first; a tie: the earlier hour first
        ym = self._day // 100
        peaks = []
        total = 0
        for wh, key in got:
            total += wh
            peaks.append('{"date":"%04d-%02d-%02d","hour":%d,"wh":%d}' % (ym // 100, ym % 100, -key // 100, -key % 100, wh))
        cap = total // len(got) if got else 0
        steps = self.steps
        s = 0
        while s < len(steps) and cap > steps[s] * 1000:
            s += 1
        limit = room = -1  # the open top step: no limit, no headroom
        if s < len(steps):
            limit = steps[s] * 1000
            # The peaks of other days that would stay with this hour's day in the top three.
            dd = self._day % 100
            others = [wh for wh, key in got if -key // 100 != dd]
            if len(others) == 3:
                others.pop()
            k = len(others) + 1
            # floor(average) stays <= limit while the sum stays <= limit*k + k - 1.
            room = limit * k + k - 1 - sum(others) - (hour if hour >= 0 else si)
            if room < 0:
                room = 0
        return (
            '{"meter_clock":"%s","hour_start":%s,"hour_import_wh":%s,"last_hour_import_wh":%s,'
            '"today_import_wh":%d,"today_export_wh":%d,"month_import_wh":%d,"month_export_wh":%d,'
            '"peaks":[%s],"capacity_wh":%d,"capacity_step":%d,"step_limit_wh":%s,"headroom_wh":%s}'
            % (self._clock, start, _num(hour), _num(self._last_hour),
               self._dimp + si, self._dexp + se, self._mimp + si, self._mexp + se,
               ",".join(peaks), cap, s + 1, _num(limit), _num(room))
        ).encode()

    # -- persistence --------------------------------------------------------

    def dump(self):
        """The accounting state as one short versioned text line with a CRC (bytes)."""
        vals = [self._t] + self._r + [self._ht] + self._h + [
            self._day, self._dimp, self._dexp, self._mimp, self._mexp, self._last_hour] + self._pk
        text = VERSION + " " + (self._clock or "-") + " " + " ".join([str(v) for v in vals])
        data = text.encode()
        return data + (" %04x" % crc16(data)).encode()

    def restore(self, data):
        """Take a state from dump(). False (and a fresh state) for anything else; never raises."""
        self.changed = False
        try:
            text = bytes(data).decode()
            cut = text.rfind(" ")
            parts = text[:cut].split(" ")
            v = [int(x) for x in parts[2:]]
            if int(text[cut + 1:], 16) != crc16(text[:cut].encode()) or len(v) != 22 or parts[0] != VERSION:
                raise ValueError
            if v[0] < 0:  # the dump of a state that has seen no List 3 yet
                self._fresh()
                return text == self.dump().decode()
            t, ht, day, pk = v[0], v[5], v[10], v[16:]
            if lt.parse(parts[1]) < 0 or lt.date_of(lt.to_local(t)) != day or min(v[1:5] + v[6:10] + v[11:15]) < 0:
                raise ValueError
            if v[15] < -1 or (ht != -1 and (ht % 60 or ht > t or ht < 0)):
                raise ValueError
            for i in (0, 2, 4):
                if pk[i + 1] < -1 or (pk[i + 1] >= 0 and not (100 <= pk[i] <= 3123 and pk[i] % 100 < 24)):
                    raise ValueError
        except Exception:  # anything malformed: a fresh state
            self._fresh()
            return False
        self._fresh()
        self._t, self._clock, self._r, self._ht, self._h = t, parts[1], v[1:5], ht, v[6:10]
        self._day, self._dimp, self._dexp, self._mimp, self._mexp, self._last_hour = v[10:16]
        self._pk = pk
        return True


def _not_below(a, b):
    for k in range(4):
        if a[k] < b[k]:
            return False
    return True
