"""Start-up on the ESP32: config, safe boot, device objects, the loop, crashes.

main.py calls main(). run() is the one place that calls hanport.app.run.
Both go in phases (the generators boot() and start()) with a collection
between phases, so that start-up garbage never meets what the loop keeps.
"""
import gc
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
    for _ in boot(config_path, data_dir, flag):
        # Between the phases of start-up: the garbage of one phase (JSON parsing,
        # messages, imports) is gone before the next allocates what it keeps.
        gc.collect()


def boot(config_path=CONFIG_PATH, data_dir=DATA_DIR, flag=safeboot.FLAG):
    """main() in phases: a generator that yields between them (the heap test
    steps through it, one phase per top-level call)."""
    cfg, errors = load_config(config_path)
    yield
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
    # Only the boot needs these: their code leaves the heap before the loop
    # allocates its long-lived buffers (issue 9).
    errors = None
    forget("firmware.safeboot")
    yield
    from firmware.storage import FlashStorage
    storage = FlashStorage(data_dir)
    yield
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
    finally:
        # Needed once, at boot: its code and tables (about 12 KB) leave the heap.
        data = hconfig = None
        forget("hanport.config")


def forget(name):
    """Drop a module from sys.modules and from its package, so that, once nothing
    else refers to it, the collector frees its code (a later import loads it again)."""
    mod = sys.modules.pop(name, None)
    if mod is None:
        return
    pkg, _, attr = name.rpartition(".")
    parent = sys.modules.get(pkg)
    if parent is not None and getattr(parent, attr, None) is mod:
        delattr(parent, attr)
    if globals().get(attr) is mod:
        del globals()[attr]


def run(cfg, storage):
    for _ in start(cfg, storage):
        gc.collect()


def start(cfg, storage):
    """run() in phases (see boot()); the last one is the loop, which never ends."""
    from firmware.clock import Clock
    from firmware.system import System
    from firmware.uart_source import UartSource
    from firmware.watchdog import make as make_watchdog
    from firmware.wifi import WiFi
    yield
    from hanport import app
    from hanport.mqtt import Client

    # The meter's layout now, while the heap is whole, rather than at the first
    # frame (a failed load is retried at the next frame; decode.py imports the
    # others when first seen). 8E1 is Aidon's OBIS array; 8N1 Kaifa or Kamstrup.
    if cfg["han"]["parity"] == "E":
        from hanport import obis_array  # noqa: F401
    else:
        from hanport import kaifa, kamstrup  # noqa: F401
    yield
    h, w = cfg["han"], cfg["wifi"]
    print("hanport: %s starting: Wi-Fi %r, MQTT %s:%d, HAN UART%d rx=GPIO%d %d 8%s1, watchdog %d s" % (
        cfg["device"]["name"], w["ssid"], cfg["mqtt"]["host"], cfg["mqtt"]["port"],
        h["uart"], h["rx"], h["baud"], h["parity"], cfg["watchdog_s"]))
    clock = Clock(cfg["ntp_host"])
    source = UartSource(h["uart"], h["rx"], h["tx"], h["baud"], h["parity"], h["invert"])
    link = WiFi(w["ssid"], w["password"], w["hostname"], clock, w["pm"])
    # The watchdog starts at the loop's first feed(), not here.
    watchdog = make_watchdog(cfg["watchdog_s"])
    system = System()

    def client(*args):
        return Client(*args, timeout_ms=MQTT_TIMEOUT_MS)

    yield
    app.run(source, clock, link, client, storage, watchdog, system, cfg)


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
