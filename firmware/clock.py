"""Clock (see hanport.ports) on MicroPython's time module, with optional NTP.

The ESP32's time.time() counts from 2000-01-01 and starts there after power
on, so a time before VALID_FROM means "not set yet" and reads as 0.
"""
import time

UNIX_2000 = 946684800  # seconds from 1970-01-01 to 2000-01-01
EPOCH_OFFSET = UNIX_2000 if time.gmtime(0)[0] == 2000 else 0
VALID_FROM = 1704067200  # 2024-01-01: any earlier time was never set
NTP_RETRY_MS = 60000  # while unset
NTP_RESYNC_MS = 6 * 3600 * 1000  # the RTC drifts a few seconds a day
NTP_TIMEOUT_S = 2


class Clock:
    def __init__(self, ntp_host=""):
        self._ntp_host = ntp_host
        self._last_try = None  # ticks of the last NTP attempt
        self.ntp_ok = False
        self.ntp_failures = 0  # failed syncs since boot
        self.ntp_error = None  # the last one's exception type name, e.g. "ValueError"

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def time(self):
        t = time.time() + EPOCH_OFFSET
        if self._ntp_host:
            due = NTP_RESYNC_MS if t >= VALID_FROM else NTP_RETRY_MS
            if self._last_try is None or time.ticks_diff(time.ticks_ms(), self._last_try) >= due:
                self.sync()
                t = time.time() + EPOCH_OFFSET
        return t if t >= VALID_FROM else 0

    def sync(self):
        """One NTP query, bounded by a socket timeout (DNS aside). True on success.

        Never raises: time() runs inside the frame handler, and a reading must
        not be lost to the network. Besides OSError (timeout, DNS), a short or
        malformed reply makes ntptime's struct.unpack raise ValueError (and
        CPython's struct.error), a bad timestamp OverflowError, a missing
        module ImportError: every Exception is counted, none escapes.
        """
        self._last_try = time.ticks_ms()
        try:
            import ntptime
            ntptime.host = self._ntp_host
            ntptime.timeout = NTP_TIMEOUT_S
            ntptime.settime()  # sets the RTC to UTC
            self.ntp_ok = True
        except Exception as e:  # every kind: see the docstring
            self.ntp_ok = False
            self.ntp_failures += 1
            self.ntp_error = type(e).__name__
        return self.ntp_ok
