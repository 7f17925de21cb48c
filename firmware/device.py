"""Start-up on the ESP32: config, safe boot, device objects, the loop, crashes.

main.py calls main(). run() is the one place that calls hanport.app.run.
"""
import io
import sys
import time

import machine

from firmware import safeboot

CONFIG_PATH = "/config.json"
DATA_DIR = "/data"
CRASH_NAME = "last_crash"  # hanport.app.LAST_CRASH: diag reports it on the next boot
CRASH_MAX = 1024  # bytes of traceback kept: the tail, where the error is
CRASH_WAIT_S = 5  # time to read the traceback on the console before the reset
MQTT_TIMEOUT_MS = 10000  # bound of each blocking MQTT call (connect, publish, ping)


def main(config_path=CONFIG_PATH, data_dir=DATA_DIR, flag=safeboot.FLAG):
    cfg, errors = load_config(config_path)
    forget("hanport.config")  # needed once, at boot: its bytecode and tables (about 12 KB) go
    pin = 0  # a broken config still gets the BOOT button
    if cfg is not None and not [e for e in errors if e.startswith("safe_boot_pin")]:
        pin = cfg["safe_boot_pin"]
    why = safeboot.requested(pin, flag)
    if why:
        safeboot.explain(why)
        return
    if errors:
        # Rebooting would not mend the file: stay at the REPL, no watchdog.
        print("hanport: not starting, fix " + config_path + ":")
        for e in errors:
            print("  " + e)
        return
    from firmware.storage import FlashStorage
    storage = FlashStorage(data_dir)
    try:
        run(cfg, storage)
    except Exception as e:  # KeyboardInterrupt (mpremote) passes to the REPL
        record_crash(e, storage)
        time.sleep(CRASH_WAIT_S)
        machine.reset()


def load_config(path):
    """(cfg or None, errors) from the file at path; errors never quote a password.

    Reads at most hconfig.MAX_BYTES (+1 to see that a file is bigger) as bytes:
    a file in Latin-1 or with a byte order mark is then a message, not a
    UnicodeError from a text-mode read.
    """
    from hanport import config as hconfig

    try:
        with open(path, "rb") as f:
            data = f.read(hconfig.MAX_BYTES + 1)
    except OSError:
        return None, [path + ": missing or unreadable (tools/deploy.py --config FILE puts it there)"]
    try:
        return hconfig.parse(data, path)
    except Exception as e:  # parse() never raises; should it, the list still beats a traceback
        return None, [path + ": cannot be checked (" + type(e).__name__ + ")"]


def forget(name):
    """Drop a module that is no longer needed, so that the heap gets it back."""
    sys.modules.pop(name, None)
    pkg, _, attr = name.rpartition(".")
    try:
        delattr(sys.modules[pkg], attr)
    except (KeyError, AttributeError):
        pass


def run(cfg, storage):
    from firmware.clock import Clock
    from firmware.system import System
    from firmware.uart_source import UartSource
    from firmware.watchdog import make as make_watchdog
    from firmware.wifi import WiFi
    from hanport import app
    from hanport.mqtt import Client

    h, w = cfg["han"], cfg["wifi"]
    print("hanport: %s starting: Wi-Fi %r, MQTT %s:%d, HAN UART%d rx=GPIO%d %d 8%s1, watchdog %d s" % (
        cfg["device"]["name"], w["ssid"], cfg["mqtt"]["host"], cfg["mqtt"]["port"],
        h["uart"], h["rx"], h["baud"], h["parity"], cfg["watchdog_s"]))
    clock = Clock(cfg["ntp_host"])
    source = UartSource(h["uart"], h["rx"], h["tx"], h["baud"], h["parity"], h["invert"])
    link = WiFi(w["ssid"], w["password"], w["hostname"], clock, w["pm"])
    # The watchdog starts at the loop's first feed(), not here.
    watchdog = make_watchdog(cfg["watchdog_s"])
    def client(*args):
        return Client(*args, timeout_ms=MQTT_TIMEOUT_MS)

    app.run(source, clock, link, client, storage, watchdog, System(), cfg)


def record_crash(e, storage):
    """Print the traceback and keep its tail in storage for the diagnostics."""
    try:
        buf = io.StringIO()
        sys.print_exception(e, buf)
        text = buf.getvalue()
        if len(text) > CRASH_MAX:
            text = text[-CRASH_MAX:]
        print("hanport: crashed, resetting in %d s\n%s" % (CRASH_WAIT_S, text))
        storage.write(CRASH_NAME, text.encode())
    except Exception:
        pass  # out of memory or a broken filesystem must not stop the reset
