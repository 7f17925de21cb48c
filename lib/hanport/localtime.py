"""Norwegian local time <-> UTC with integers only.

Times are whole minutes since 1970-01-01 00:00 (UTC or local); dates are
packed as yyyymmdd ints. Norway follows the EU rule: CET (UTC+1), and CEST
(UTC+2) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
Sunday of October (Directive 2000/84/EC, articles 2 and 3).

The day-number conversions are Howard Hinnant's days_from_civil and
civil_from_days (https://howardhinnant.github.io/date_algorithms.html),
written out with floor division.
"""

DAY = 1440  # minutes


def days_from_civil(y, m, d):
    """Days from 1970-01-01 to y-m-d (proleptic Gregorian)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(n):
    """(y, m, d) of day number n (days from 1970-01-01)."""
    z = n + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _last_sunday(y, m):
    """Day number of the last Sunday of month m (a 31-day month)."""
    n = days_from_civil(y, m, 31)
    return n - (n - 3) % 7  # day 3 (1970-01-04) was a Sunday


def summer(u):
    """Is UTC minute u in summer time (CEST)?"""
    y = civil_from_days(u // DAY)[0]
    return _last_sunday(y, 3) * DAY + 60 <= u < _last_sunday(y, 10) * DAY + 60


def to_local(u):
    """Local minute of UTC minute u."""
    return u + (120 if summer(u) else 60)


def date_of(lm):
    """Packed yyyymmdd of local minute lm."""
    y, m, d = civil_from_days(lm // DAY)
    return (y * 100 + m) * 100 + d


def text(lm):
    """Local minute as "YYYY-MM-DDTHH:MM:00"."""
    y, m, d = civil_from_days(lm // DAY)
    r = lm % DAY
    return "%04d-%02d-%02dT%02d:%02d:00" % (y, m, d, r // 60, r % 60)


def parse(s):
    """Local minute of "YYYY-MM-DDTHH:MM:SS", rounded to the nearest minute; -1 if malformed."""
    if not isinstance(s, str) or len(s) != 19:
        return -1
    if s[4] != "-" or s[7] != "-" or s[10] != "T" or s[13] != ":" or s[16] != ":":
        return -1
    try:
        y = int(s[0:4])
        mo = int(s[5:7])
        d = int(s[8:10])
        h = int(s[11:13])
        mi = int(s[14:16])
        sec = int(s[17:19])
    except ValueError:
        return -1
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 23 and 0 <= mi <= 59 and 0 <= sec <= 59):
        return -1
    n = days_from_civil(y, mo, d)
    if civil_from_days(n)[2] != d:  # 30 February and the like
        return -1
    return n * DAY + h * 60 + mi + (1 if sec >= 30 else 0)


def candidates(lm):
    """(utc, other): the UTC minute of local minute lm, and the other reading of it
    in the repeated October hour (-1 when lm is not ambiguous). In that hour utc is
    the first (summer time) pass and other the second (standard time). A local
    time that does not exist (the skipped March hour) reads as standard time,
    which is the same instant as one hour later in summer time."""
    cest = lm - 120
    cet = lm - 60
    if summer(cest):
        return cest, (-1 if summer(cet) else cet)
    return cet, -1
