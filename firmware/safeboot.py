"""Safe boot: skip the application so that mpremote can reach the REPL.

Once the app has started the watchdog it cannot be stopped, and mpremote's
Ctrl-C then ends in a reset a minute later. Two ways in:
- the flag file /safeboot exists (mpremote fs touch :/safeboot, then reset);
- the safe-boot pin (default GPIO0, the BOOT button, pressed = low) is held
  during the first seconds after reset. GPIO0 is also a strapping pin:
  holding it *while* pressing EN starts the ROM bootloader instead, so press
  EN, release it, then hold BOOT.
"""
import os
import time

import machine

FLAG = "/safeboot"
WINDOW_MS = 2000  # how long after boot the pin is watched


def _flag_exists(flag):
    try:
        os.stat(flag)
        return True
    except OSError:
        return False


def requested(pin=0, flag=FLAG, window_ms=WINDOW_MS):
    """Return why safe boot was asked for, or None to start the app."""
    if _flag_exists(flag):
        return "flag file " + flag
    if pin is None:
        return None
    p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    print("hanport: hold GPIO%d low now for safe boot" % pin)
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < window_ms:
        if p.value() == 0:
            return "GPIO%d held low" % pin
        time.sleep_ms(20)
    return None


def explain(reason):
    print("hanport: SAFE BOOT (%s): the app and its watchdog are not running." % reason)
    print("  To leave safe mode: release the button, and if the flag is set run")
    print("    mpremote fs rm :%s + reset" % FLAG)
    print("  Or here at the REPL: import os; os.remove('%s'); import machine; machine.reset()" % FLAG)
