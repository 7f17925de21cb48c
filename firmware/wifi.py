"""Wi-Fi station as a Link (see hanport.ports): non-blocking, with backoff.

The ESP-IDF driver retries forever by default, transmitting all the while;
on HAN-port power that can brown the dongle out. So the driver gets a few
retries of its own (config reconnects) within one attempt window, and then
this module stops it and decides when to try again: exponential backoff,
capped, with jitter.

An attempt is judged by isconnected() within ATTEMPT_MS, never by status():
MicroPython's esp32 driver (ports/esp32/network_wlan.c) keeps the last
failure reason (201 no AP, 202 wrong password) until the next GOT_IP and
status() reports it ahead of "connecting", so right after a new connect()
status() still shows the previous attempt's failure.
"""
import network

try:
    from random import getrandbits
except ImportError:  # some tiny ports lack random
    def getrandbits(_bits):
        return 0

# wlan.status() codes on the ESP32 port (ESP-IDF reasons above 199).
STATES = {
    1000: "idle",
    1001: "connecting",
    1010: "got_ip",
    200: "beacon_timeout",
    201: "no_ap_found",
    202: "wrong_password",
    203: "assoc_failed",
    204: "handshake_timeout",
    205: "connection_failed",
    2: "auth_expired",
    4: "assoc_expired",
    8: "assoc_leave",
    15: "handshake_timeout",
}
CONNECTING = 1001

DRIVER_RECONNECTS = 3
BACKOFF_FIRST_MS = 2000
BACKOFF_CAP_MS = 120000
# One attempt: connect() (or a drop, when the driver reconnects by itself)
# plus the driver's DRIVER_RECONNECTS retries, each a scan and a handshake of
# a few seconds. Not connected by then: the attempt failed.
ATTEMPT_MS = 30000


class WiFi:
    def __init__(self, ssid, password, hostname, clock, pm="performance"):
        self._ssid = ssid
        self._key = password  # never printed: not in any message or repr
        self._clock = clock
        network.hostname(hostname)  # must precede active(True)
        WLAN = network.WLAN
        self._wlan = wlan = WLAN(WLAN.IF_STA)
        wlan.active(True)
        # pm is one of config's PM_MODES: "powersave" is WLAN.PM_POWERSAVE.
        wlan.config(pm=getattr(WLAN, "PM_" + pm.upper()), reconnects=DRIVER_RECONNECTS)
        self._up = False
        self._fails = 0  # failed attempts since the link was last up
        self._started = None  # ticks when the current attempt started
        self._since = clock.ticks_ms()  # the wait before the next attempt starts here
        self._wait = 0
        self.attempts = 0

    def __repr__(self):
        return "<WiFi %s %s>" % (self._ssid, self.state())

    def poll(self):
        wlan = self._wlan
        if wlan.isconnected():
            self._up = True
            self._fails = 0
            self._started = None
            return True
        clock = self._clock
        now = clock.ticks_ms()
        if self._up:
            # Just dropped: the driver is already retrying (config reconnects).
            self._up = False
            self._started = now
        if self._started is not None:
            if clock.ticks_diff(now, self._started) < ATTEMPT_MS:
                return False  # status() may still show the last failure: ignore it
            self._failed(now)  # not connected within the window
        if clock.ticks_diff(now, self._since) >= self._wait:
            self._start(now)
        return False

    def _failed(self, now):
        # Stop the driver, so that the radio stays quiet during the backoff,
        # and time the wait from the end of the attempt.
        self._started = None
        self._fails += 1
        self._since = now
        self._wait = self.backoff_ms(self._fails)
        try:
            self._wlan.disconnect()
        except OSError:
            pass

    def _start(self, now):
        self.attempts += 1
        self._started = now
        try:
            # The driver is idle here (stopped by _failed, or never started).
            self._wlan.connect(self._ssid, self._key)
        except OSError:
            self._failed(now)  # e.g. a connect the boot script left running

    def backoff_ms(self, fails):
        """Delay after `fails` failed attempts: doubling, capped, minus up to half as jitter."""
        delay = BACKOFF_FIRST_MS
        for _ in range(fails - 1):
            delay *= 2
            if delay >= BACKOFF_CAP_MS:
                delay = BACKOFF_CAP_MS
                break
        # Jitter so that dongles rebooted together do not retry in step.
        return delay - (delay // 2) * getrandbits(8) // 256

    def state(self):
        wlan = self._wlan
        if not wlan.active():
            return "inactive"
        st = wlan.status()
        return STATES.get(st, "status_%d" % st)

    def rssi(self):
        try:
            return self._wlan.status("rssi")
        except OSError:  # not connected
            return None
