"""Watchdog (see hanport.ports): machine.WDT, started by the loop's first feed().

The ESP32 watchdog cannot be stopped once started and survives a soft reset,
so it starts only when the main loop is running: a crash during start-up, or
a safe boot, leaves the REPL reachable without a reset every few seconds.
"""
import machine


class Watchdog:
    """timeout_s 0 (watchdog_s = 0 in the config) never starts one: for
    development at the REPL. (One class for both: a second costs heap.)"""

    def __init__(self, timeout_s):
        self.timeout_ms = timeout_s * 1000
        self._wdt = None

    @property
    def started(self):
        return self._wdt is not None

    def feed(self):
        if self._wdt is None:
            if not self.timeout_ms:
                return
            self._wdt = machine.WDT(timeout=self.timeout_ms)
        self._wdt.feed()


def make(timeout_s):
    return Watchdog(timeout_s)
