"""The ESP32 device objects under CPython, with fakes only for what this PC lacks.

machine and network are replaced by small fakes in sys.modules; MicroPython's
time.ticks_* and sys.print_exception are added to CPython's modules for the
duration of a test. The MQTT client is hanport.mqtt (test_mqtt_client.py); here
the device's loop runs it against a real mosquitto.
"""
import errno
import importlib
import json
import os
import struct
import sys
import time
import traceback
import types

import pytest

import hanport.mqtt  # noqa: F401  (binds CPython's clock before a fixture fakes time.ticks_ms)
from brokers import Mosquitto, Subscriber

WIFI_PW = "wifi-secret-123"
MQTT_PW = "mqtt-secret-456"


# -- fakes for the hardware ---------------------------------------------------

class Ticks:
    """time.ticks_ms and friends, on a clock the test moves."""

    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.now += ms


class Reset(Exception):
    """machine.reset() in the fake: ends the code under test."""


def fake_machine():
    m = types.ModuleType("machine")
    m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET, m.DEEPSLEEP_RESET, m.SOFT_RESET = 1, 2, 3, 4, 5
    m.cause = 3
    m.reset_cause = lambda: m.cause
    m.wdts = []
    m.resets = 0
    m.pin_level = 1
    m.uart_chunks = []  # what the meter sends, one driver read each

    class WDT:
        def __init__(self, timeout):
            self.timeout = timeout
            self.feeds = 0
            m.wdts.append(self)

        def feed(self):
            self.feeds += 1

    class Pin:
        IN, PULL_UP = 1, 2

        def __init__(self, n, mode, pull=None):
            self.n = n
            self.mode = mode

        def value(self):
            return m.pin_level

    class UART:
        IRQ_RXIDLE, INV_RX = 4, 1

        def __init__(self, uart_id, **kw):
            self.kw = kw
            self.chunks = m.uart_chunks

        def irq(self, handler, trigger=0):
            self.handler = handler

        def readinto(self, buf, nbytes=None):
            # Like the ESP32 driver: at most nbytes, the rest stays buffered.
            if not self.chunks:
                return None
            n = min(len(self.chunks[0]), len(buf) if nbytes is None else nbytes)
            c = self.chunks[0]
            buf[:n] = c[:n]
            if n == len(c):
                self.chunks.pop(0)
            else:
                self.chunks[0] = c[n:]
            return n

        def any(self):
            return sum(len(c) for c in self.chunks)

    def reset():
        m.resets += 1
        raise Reset()

    m.WDT, m.Pin, m.UART, m.reset = WDT, Pin, UART, reset
    return m


class FakeWLAN:
    """The esp32 port's station interface, status() included.

    Like ports/esp32/network_wlan.c, the fake keeps the last failure reason
    (201 no AP, 202 wrong password) until the next GOT_IP, and status()
    reports it ahead of "connecting": right after a new connect(), status()
    still says how the previous attempt ended. The test plays the driver's
    events with fail() and got_ip(); `code`, when set, overrides status().
    """
    IF_STA = 0
    PM_NONE, PM_PERFORMANCE, PM_POWERSAVE = 0, 1, 2
    SHOWN_FIRST = (201, 202)  # failure reasons status() reports even while retrying
    ASSOC_LEAVE = 8  # the reason after disconnect(): status() says idle

    def __init__(self, log):
        self.log = log
        self.is_active = False
        self.code = None
        self.connected = False
        self.connects = []
        self.disconnects = 0
        self.reason = 0  # last failure reason, cleared only by GOT_IP
        self.requested = False  # connect() called, disconnect() not yet
        self.tries_left = 0  # the driver's own retries left in this attempt
        self.reconnects = None

    def active(self, on=None):
        if on is None:
            return self.is_active
        self.log.append(("active", on))
        self.is_active = on

    def config(self, **kw):
        self.log.append(("config", kw))
        self.reconnects = kw.get("reconnects", self.reconnects)

    def connect(self, ssid, key):
        self.connects.append((ssid, key))
        self.requested = True
        self.tries_left = 1 + (self.reconnects or 0)

    def disconnect(self):
        self.disconnects += 1
        if self.retrying or self.connected:  # an idle driver reports no event
            self.reason = self.ASSOC_LEAVE
        self.requested = False
        self.connected = False
        self.tries_left = 0

    # -- the driver's events, played by the test --
    def got_ip(self):
        self.connected = True
        self.reason = 0

    def fail(self, reason):
        """One try of the driver failed (or the link dropped) with `reason`."""
        self.connected = False
        self.reason = reason
        if self.tries_left:
            self.tries_left -= 1

    @property
    def retrying(self):
        return self.requested and self.tries_left > 0

    def isconnected(self):
        return self.connected

    def status(self, what=None):
        if what == "rssi":
            if not self.connected:
                raise OSError("STA is not connected")
            return -67
        if self.code is not None:
            return self.code
        if self.connected:
            return 1010
        if self.reason in self.SHOWN_FIRST:
            return self.reason
        if self.reason == self.ASSOC_LEAVE:
            return 1000
        if self.retrying:
            return 1001
        return self.reason or 1000


def fake_network():
    n = types.ModuleType("network")
    n.log = []
    n.hostname = lambda name: n.log.append(("hostname", name))

    def WLAN(iface):
        n.wlan = FakeWLAN(n.log)
        return n.wlan

    WLAN.IF_STA = FakeWLAN.IF_STA
    WLAN.PM_NONE, WLAN.PM_PERFORMANCE, WLAN.PM_POWERSAVE = 0, 1, 2
    n.WLAN = WLAN
    return n


@pytest.fixture
def fw(monkeypatch):
    """Fakes installed; returns a namespace with them and a fresh import function."""
    ns = types.SimpleNamespace()
    ns.ticks = Ticks()
    ns.machine = fake_machine()
    ns.network = fake_network()
    import time
    for name in ("ticks_ms", "ticks_diff", "sleep_ms"):
        monkeypatch.setattr(time, name, getattr(ns.ticks, name), raising=False)
    monkeypatch.setattr(sys, "print_exception", lambda e, f: traceback.print_exception(
        type(e), e, e.__traceback__, file=f), raising=False)
    for name, mod in (("machine", ns.machine), ("network", ns.network)):
        monkeypatch.setitem(sys.modules, name, mod)
    import gc
    monkeypatch.setattr(gc, "mem_free", lambda: 51200, raising=False)

    def forget_firmware():
        # firmware modules bind machine/network at import: import them afresh.
        for name in [n for n in sys.modules if n == "firmware" or n.startswith("firmware.")]:
            del sys.modules[name]

    def load(name):
        forget_firmware()
        return importlib.import_module(name)

    ns.load = load
    yield ns
    forget_firmware()


# -- Wi-Fi ------------------------------------------------------------------

def make_wifi(fw, pm="powersave"):
    wifi = fw.load("firmware.wifi")
    link = wifi.WiFi("home", WIFI_PW, "stue", fw.ticks, pm)
    return wifi, link, fw.network.wlan


def test_wifi_sets_the_hostname_before_activating_and_limits_driver_retries(fw):
    wifi, link, wlan = make_wifi(fw)
    log = fw.network.log
    assert log[0] == ("hostname", "stue")
    assert log[1] == ("active", True)
    assert log[2] == ("config", {"pm": FakeWLAN.PM_POWERSAVE, "reconnects": wifi.DRIVER_RECONNECTS})


@pytest.mark.parametrize("code, name", [
    (1000, "idle"), (1001, "connecting"), (1010, "got_ip"), (201, "no_ap_found"),
    (202, "wrong_password"), (203, "assoc_failed"), (204, "handshake_timeout"),
    (200, "beacon_timeout"), (999, "status_999"),
])
def test_wifi_status_codes_read_as_names(fw, code, name):
    _, link, wlan = make_wifi(fw)
    wlan.code = code
    assert link.state() == name


def test_wifi_state_when_the_radio_is_off(fw):
    _, link, wlan = make_wifi(fw)
    wlan.is_active = False
    assert link.state() == "inactive"


def test_wifi_poll_connects_once_and_waits_while_connecting(fw):
    _, link, wlan = make_wifi(fw)
    assert link.poll() is False
    assert wlan.connects == [("home", WIFI_PW)]
    fw.ticks.now += 5000
    assert link.poll() is False
    assert len(wlan.connects) == 1  # still connecting: no second attempt
    wlan.got_ip()
    assert link.poll() is True
    assert link.rssi() == -67


def fail_attempt(fw, wifi, link, wlan, reason=202):
    """The driver fails every try of the running attempt; the window ends."""
    while wlan.retrying:
        wlan.fail(reason)
        fw.ticks.now += 10
        assert link.poll() is False
    fw.ticks.now += wifi.ATTEMPT_MS
    link.poll()


def test_wifi_backs_off_exponentially_after_failures(fw):
    wifi, link, wlan = make_wifi(fw)
    wifi.getrandbits = lambda bits: 0  # no jitter: the full delay
    waits = []
    link.poll()
    for _ in range(10):
        n = len(wlan.connects)
        fail_attempt(fw, wifi, link, wlan)  # the wait starts when the attempt ends
        assert len(wlan.connects) == n
        waited = 0
        while len(wlan.connects) == n:
            fw.ticks.now += 100
            waited += 100
            link.poll()
        waits.append(waited)
    assert waits[:4] == [2000, 4000, 8000, 16000]
    assert max(waits) == wifi.BACKOFF_CAP_MS
    assert waits[-1] == wifi.BACKOFF_CAP_MS


def test_wifi_a_new_attempt_is_not_judged_by_the_last_failure(fw):
    """After a wrong password, status() says 202 through the next attempt too.

    The next attempt must run its window: the driver's own retries are not
    cut off by disconnect(), and a success a few seconds in is taken.
    """
    wifi, link, wlan = make_wifi(fw)
    link.poll()
    fail_attempt(fw, wifi, link, wlan, 202)
    fw.ticks.now += wifi.BACKOFF_FIRST_MS
    link.poll()
    assert len(wlan.connects) == 2 and wlan.status() == 202  # stale, as on the ESP32
    cut = wlan.disconnects
    for _ in range(50):  # the password was fixed: the driver is associating
        fw.ticks.now += 100
        assert link.poll() is False
    assert wlan.disconnects == cut and wlan.requested  # the driver was left alone
    assert len(wlan.connects) == 2
    wlan.got_ip()
    assert link.poll() is True
    assert link.attempts == 2


def test_wifi_waits_out_the_driver_retries_after_a_drop_with_no_ap(fw):
    wifi, link, wlan = make_wifi(fw)
    link.poll()
    wlan.got_ip()
    assert link.poll()
    wlan.fail(201)  # the router reboots: the driver retries by itself, status() says 201
    for _ in range(100):
        fw.ticks.now += 200
        assert link.poll() is False
    assert wlan.disconnects == 0 and len(wlan.connects) == 1
    wlan.got_ip()
    assert link.poll() is True


def test_wifi_stops_the_driver_when_an_attempt_fails(fw):
    """Power budget: no transmitting during the backoff."""
    wifi, link, wlan = make_wifi(fw)
    link.poll()
    wlan.fail(202)  # one failed try; the driver still has retries left
    fw.ticks.now += wifi.ATTEMPT_MS
    link.poll()
    assert wlan.disconnects == 1 and not wlan.requested
    assert len(wlan.connects) == 1


def test_wifi_gives_up_on_an_attempt_that_hangs(fw):
    wifi, link, wlan = make_wifi(fw)
    link.poll()
    fw.ticks.now += wifi.ATTEMPT_MS - 1
    link.poll()
    assert len(wlan.connects) == 1 and wlan.disconnects == 0
    fw.ticks.now += 1
    link.poll()  # still "connecting" after the limit: counted as failed
    fw.ticks.now += wifi.BACKOFF_FIRST_MS
    link.poll()
    assert len(wlan.connects) == 2


def test_wifi_a_refused_connect_is_a_failed_attempt(fw):
    wifi, link, wlan = make_wifi(fw)
    wifi.getrandbits = lambda bits: 0

    def busy(ssid, key):
        raise OSError("Wifi Internal Error")

    wlan.connect = busy
    assert link.poll() is False
    fw.ticks.now += wifi.BACKOFF_FIRST_MS - 1
    link.poll()
    assert link.attempts == 1
    fw.ticks.now += 1
    link.poll()
    assert link.attempts == 2


def test_wifi_lets_the_driver_retry_after_a_drop(fw):
    _, link, wlan = make_wifi(fw)
    link.poll()
    wlan.got_ip()
    assert link.poll()
    wlan.fail(200)  # beacon timeout: the driver reconnects by itself
    fw.ticks.now += 1000
    assert link.poll() is False
    assert len(wlan.connects) == 1 and wlan.disconnects == 0
    assert link.rssi() is None


def test_wifi_never_shows_the_password(fw):
    _, link, wlan = make_wifi(fw)
    link.poll()
    assert WIFI_PW not in repr(link) + link.state()


# -- storage, watchdog, system, clock ----------------------------------------

def test_storage_reads_what_was_written_and_none_for_unknown(fw, tmp_path):
    st = fw.load("firmware.storage").FlashStorage(str(tmp_path / "data"))
    assert st.read("last_list3") is None
    st.write("last_list3", b"one")
    st.write("last_list3", b"two")
    assert st.read("last_list3") == b"two"
    assert sorted(os.listdir(tmp_path / "data")) == ["last_list3"]


def test_storage_keeps_the_old_contents_when_power_fails_before_the_rename(fw, tmp_path, monkeypatch):
    mod = fw.load("firmware.storage")
    st = mod.FlashStorage(str(tmp_path))
    st.write("x", b"old")

    def power_cut(a, b):
        raise KeyboardInterrupt  # stands for the supply dropping: nothing after it runs

    monkeypatch.setattr(mod.os, "rename", power_cut)
    with pytest.raises(KeyboardInterrupt):
        st.write("x", b"new")
    monkeypatch.undo()
    assert st.read("x") == b"old"


def test_storage_refuses_names_that_leave_its_directory(fw, tmp_path):
    st = fw.load("firmware.storage").FlashStorage(str(tmp_path))
    for name in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            st.write(name, b"")


def test_watchdog_starts_at_the_first_feed(fw):
    wd = fw.load("firmware.watchdog")
    w = wd.make(60)
    assert fw.machine.wdts == []
    w.feed()
    w.feed()
    (wdt,) = fw.machine.wdts
    assert wdt.timeout == 60000 and wdt.feeds == 2


def test_watchdog_off_is_a_no_op(fw):
    w = fw.load("firmware.watchdog").make(0)
    w.feed()
    assert fw.machine.wdts == [] and not w.started


def test_watchdog_minimum_covers_one_bounded_call_plus_dns():
    """The longest stretch without a feed: one MQTT call (one 10 s deadline, the
    client's timeout on the device) plus the DNS lookup of a connect, which only
    lwIP bounds: 4 tries a server, 1 + 1 + 2 + 3 s apart, up to 3 servers."""
    from hanport import config

    call_s = 10
    dns_s = 3 * (1 + 1 + 2 + 3)
    assert config.MIN_WATCHDOG_S >= call_s + dns_s + 10  # and room for the turn's own work
    cfg = config.load(GOOD_CONFIG)
    cfg["watchdog_s"] = config.MIN_WATCHDOG_S - 1
    assert any("watchdog_s" in e for e in config.check(cfg))
    cfg["watchdog_s"] = config.MIN_WATCHDOG_S
    assert config.check(cfg) == []


@pytest.mark.parametrize("cause, name", [(1, "power_on"), (2, "hard_reset"), (3, "watchdog"),
                                         (5, "soft_reset"), (0, "unknown_0")])
def test_system_names_the_reset_cause(fw, cause, name):
    fw.machine.cause = cause
    s = fw.load("firmware.system").System()
    assert s.reset_cause() == name
    assert s.free_heap() == 51200


def test_system_reports_the_largest_free_block_of_the_system_heap(fw, monkeypatch):
    esp32 = types.ModuleType("esp32")
    esp32.HEAP_DATA, esp32.HEAP_EXEC = 4, 1
    asked = []

    def idf_heap_info(caps):
        asked.append(caps)
        # (total, free, largest_free_block, min_free) per region, as on the ESP32
        return [(240, 0, 0, 0), (7288, 4892, 4864, 4864), (16648, 14152, 14336, 14112),
                (94608, 40372, 31744, 39548)]

    esp32.idf_heap_info = idf_heap_info
    monkeypatch.setitem(sys.modules, "esp32", esp32)
    s = fw.load("firmware.system").System()
    assert s.largest_free_block() == 31744 and asked == [esp32.HEAP_DATA]


def test_system_largest_free_block_is_none_off_the_esp32(fw, monkeypatch):
    monkeypatch.setitem(sys.modules, "esp32", None)  # import esp32 fails
    assert fw.load("firmware.system").System().largest_free_block() is None
    monkeypatch.setitem(sys.modules, "esp32", types.ModuleType("esp32"))  # no idf_heap_info
    assert fw.load("firmware.system").System().largest_free_block() is None


def test_diag_reports_the_largest_free_block_after_free_heap():
    from corpus import raw
    from loop_fakes import transcript

    diags = [line.split(" ", 2)[2] for line in transcript([raw("aidon_6525_it_list1")], count=1)
             if line.split(" ", 1)[0].endswith("/diag")]
    keys = list(json.loads(diags[0]))
    assert keys[keys.index("free_heap") + 1] == "largest_free_block"
    assert json.loads(diags[0])["largest_free_block"] == 40960


def test_clock_counts_from_2000_on_the_esp32_and_is_zero_until_set(fw, monkeypatch):
    clock = fw.load("firmware.clock")
    monkeypatch.setattr(clock, "EPOCH_OFFSET", clock.UNIX_2000)
    monkeypatch.setattr(clock.time, "time", lambda: 5)  # just after power on
    c = clock.Clock()
    assert c.time() == 0
    esp_2025 = 1735689600 - clock.UNIX_2000  # 2025-01-01 on the ESP32's 2000 epoch
    monkeypatch.setattr(clock.time, "time", lambda: esp_2025)
    assert c.time() == 1735689600


def test_clock_ntp_only_when_configured_and_not_too_often(fw, monkeypatch):
    clock = fw.load("firmware.clock")
    ntp = types.ModuleType("ntptime")
    ntp.calls = 0

    def settime():
        ntp.calls += 1
        raise OSError(errno.ETIMEDOUT)

    ntp.settime = settime
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    monkeypatch.setattr(clock.time, "time", lambda: 5)
    assert clock.Clock("").time() == 0 and ntp.calls == 0
    c = clock.Clock("pool.ntp.org")
    assert c.time() == 0 and ntp.calls == 1
    fw.ticks.now += 1000
    c.time()
    assert ntp.calls == 1
    fw.ticks.now += clock.NTP_RETRY_MS
    c.time()
    assert ntp.calls == 2 and ntp.host == "pool.ntp.org" and ntp.timeout <= 5


@pytest.mark.parametrize("error", [
    ValueError("buffer too small"),  # struct.unpack of a short reply on MicroPython
    struct.error("unpack requires a buffer of 4 bytes"),  # the same on CPython
    IndexError("index out of range"),
    OverflowError("overflow converting long int to machine word"),
    TypeError("unsupported types"),
    MemoryError(),
])
def test_clock_a_failed_ntp_sync_never_escapes_time(fw, monkeypatch, error):
    clock = fw.load("firmware.clock")
    ntp = types.ModuleType("ntptime")

    def settime():
        raise error

    ntp.settime = settime
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    monkeypatch.setattr(clock, "EPOCH_OFFSET", 0)
    monkeypatch.setattr(clock.time, "time", lambda: 1735689600)
    c = clock.Clock("pool.ntp.org")
    assert c.time() == 1735689600  # the reading keeps its time
    assert c.ntp_ok is False and c.ntp_failures == 1
    assert c.ntp_error == type(error).__name__
    fw.ticks.now += clock.NTP_RESYNC_MS
    c.time()
    assert c.ntp_failures == 2


def test_clock_a_short_ntp_reply_through_the_real_ntptime_code_path(fw, monkeypatch):
    """MicroPython's ntptime.time() unpacks msg[40:44]: a 12-byte reply fails there."""
    clock = fw.load("firmware.clock")
    ntp = types.ModuleType("ntptime")

    def settime():
        msg = b"\x1c" + bytes(11)  # what a broken server or middlebox sent back
        val = struct.unpack("!I", msg[40:44])[0]
        raise AssertionError("not reached: %r" % val)

    ntp.settime = settime
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    monkeypatch.setattr(clock.time, "time", lambda: 5)
    c = clock.Clock("pool.ntp.org")
    assert c.time() == 0 and c.ntp_failures == 1


# -- start-up: safe boot, config, crash --------------------------------------

GOOD_CONFIG = (
    '{"device": {"name": "stue"}, "wifi": {"ssid": "home", "password": "%s"},'
    ' "mqtt": {"host": "10.0.0.2", "user": "han", "password": "%s"}}' % (WIFI_PW, MQTT_PW))


@pytest.fixture
def start(fw, tmp_path, monkeypatch, capsys):
    """device.main() with the app replaced by a recorder."""
    (tmp_path / "config.json").write_text(GOOD_CONFIG)
    device = fw.load("firmware.device")
    safeboot = sys.modules["firmware.safeboot"]
    monkeypatch.setattr(safeboot, "WINDOW_MS", 100)
    monkeypatch.setattr(device.time, "sleep", lambda s: None)
    runs = []
    monkeypatch.setattr(device, "run", lambda cfg, storage: runs.append(cfg))

    def go():
        device.main(str(tmp_path / "config.json"), str(tmp_path / "data"),
                    str(tmp_path / "safeboot"))
        return capsys.readouterr().out

    return types.SimpleNamespace(go=go, runs=runs, device=device, dir=tmp_path)


def test_start_runs_the_app_with_the_checked_config(fw, start):
    start.go()
    assert len(start.runs) == 1 and start.runs[0]["mqtt"]["base_topic"] == "han/stue"
    assert fw.machine.wdts == []  # the loop starts the watchdog, not start-up


def test_safe_boot_flag_file_skips_the_app(fw, start):
    (start.dir / "safeboot").write_text("")
    out = start.go()
    assert start.runs == [] and fw.machine.wdts == []
    assert "SAFE BOOT" in out and "safeboot" in out


def test_safe_boot_button_held_skips_the_app(fw, start):
    fw.machine.pin_level = 0
    out = start.go()
    assert start.runs == [] and "GPIO0 held low" in out


def test_safe_boot_pin_works_even_with_a_broken_config(fw, start):
    (start.dir / "config.json").write_text("{not json")
    fw.machine.pin_level = 0
    assert "SAFE BOOT" in start.go()


def test_bad_config_stops_at_the_repl_naming_keys_not_passwords(fw, start):
    (start.dir / "config.json").write_text(GOOD_CONFIG.replace('"10.0.0.2"', '""').replace(
        WIFI_PW, "short"))
    out = start.go()
    assert start.runs == [] and fw.machine.resets == 0
    assert "mqtt.host" in out and "wifi.password" in out
    assert "short" not in out and MQTT_PW not in out


def test_missing_config_is_reported(fw, start):
    os.remove(start.dir / "config.json")
    assert "missing" in start.go()
    assert start.runs == []


def test_a_crash_is_recorded_then_the_board_resets(fw, start, monkeypatch):
    def boom(cfg, storage):
        raise ValueError("decoder blew up")

    monkeypatch.setattr(start.device, "run", boom)
    with pytest.raises(Reset):
        start.go()
    assert fw.machine.resets == 1
    crash = (start.dir / "data" / "last_crash").read_bytes()
    assert b"ValueError: decoder blew up" in crash and len(crash) <= start.device.CRASH_MAX


def test_ctrl_c_reaches_the_repl_without_a_reset(fw, start, monkeypatch):
    def interrupted(cfg, storage):
        raise KeyboardInterrupt

    monkeypatch.setattr(start.device, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        start.go()
    assert fw.machine.resets == 0


def test_run_builds_the_device_objects_and_calls_the_loop_once(fw, tmp_path, monkeypatch, capsys):
    from hanport import app, config

    cfg = config.load(GOOD_CONFIG)
    calls = []
    storage = fw.load("firmware.storage").FlashStorage(str(tmp_path))
    device = fw.load("firmware.device")
    monkeypatch.setattr(app, "run", lambda *a: calls.append(a))
    device.run(cfg, storage)
    (args,) = calls
    source, clock, link, factory, st, watchdog, system, given = args
    assert source._uart.kw["parity"] == 0 and source._uart.kw["rx"] == 16
    assert link.state() == "idle" and system.reset_cause() == "watchdog"
    assert given is cfg and st is storage and fw.machine.wdts == []
    client = factory("stue", "10.0.0.2", 1883, "han", MQTT_PW, 60, b"han/stue/status", b"offline")
    assert isinstance(client, hanport.mqtt.Client)
    assert client.timeout_ms == device.MQTT_TIMEOUT_MS == 10000
    assert MQTT_PW not in repr(client)
    out = capsys.readouterr().out
    assert "home" in out and WIFI_PW not in out and MQTT_PW not in out


AIDON_LIST2 = bytes.fromhex(
    "7ea0d24108831382d6e6e7000f40000000000109020209060101000281ff0a0b4149444f4e5f563030"
    "3031020209060000600100ff0a1037333539393932383930393431373432020209060000600107ff0a"
    "0436353135020309060100010700ff060000055202020f00161b020309060100020700ff0600000000"
    "02020f00161b020309060100030700ff06000003e402020f00161d020309060100040700ff06000000"
    "0002020f00161d0203090601001f0700ff10005d02020fff1621020309060100200700ff1209c40202"
    "0fff1623e0c47e")


def test_the_real_loop_runs_on_the_device_objects(fw, tmp_path, monkeypatch, capsys):
    """Meter bytes through the UART source, Wi-Fi up, hanport.mqtt out to a real
    mosquitto: the shapes fit hanport.app, and a clean stop says offline (no will)."""
    from hanport import app, config

    cfg = config.load(GOOD_CONFIG)
    fw.machine.uart_chunks[:] = [AIDON_LIST2[:100], AIDON_LIST2[100:]]
    storage = fw.load("firmware.storage").FlashStorage(str(tmp_path / "data"))
    device = fw.load("firmware.device")
    real_run = app.run
    steps = []

    def bounded_run(*args):
        fw.network.wlan.got_ip()
        return real_run(*args, stop=lambda a: steps.append(1) or len(steps) > 50)

    monkeypatch.setattr(app, "run", bounded_run)
    with Mosquitto(tmp_path, {"han": MQTT_PW, "viewer": "view-pw"}) as broker:
        cfg["mqtt"]["host"], cfg["mqtt"]["port"] = "127.0.0.1", broker.port
        sub = Subscriber(broker.port, "viewer", "view-pw", "han/stue/#")
        try:
            device.run(cfg, storage)
            deadline = time.monotonic() + 3
            while len(sub.on("/status")) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [m[2] for m in sub.on("/status")] == [b"online", b"offline"]
            assert b"1362" in sub.on("/list2")[0][2]
        finally:
            sub.close()
    assert fw.machine.wdts and fw.machine.wdts[0].feeds > 0  # started by the loop
    out = capsys.readouterr().out
    assert WIFI_PW not in out and MQTT_PW not in out


# -- tools/flash.py and tools/deploy.py fail in one line -----------------------

def run_tool(repo_root, *args):
    import subprocess

    p = subprocess.run([sys.executable, str(repo_root / "tools" / args[0])] + list(args[1:]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=60)
    err = p.stderr.strip()
    assert p.returncode == 1 and "Traceback" not in err and len(err.splitlines()) == 1, p
    return err


def test_flash_names_a_missing_port_or_firmware(repo_root, tmp_path):
    image = tmp_path / "ESP32_GENERIC.bin"
    image.write_bytes(b"\xe9" + bytes(200 * 1024))  # flash.py checks size and magic first
    err = run_tool(repo_root, "flash.py", "--port", "/dev/ttyNOPE0", "--firmware", str(image))
    assert err.startswith("flash: serial port /dev/ttyNOPE0 does not exist")
    err = run_tool(repo_root, "flash.py", "--port", "/dev/ttyNOPE0", "--firmware", str(tmp_path / "x.bin"))
    assert err.startswith("flash: firmware file") and "not found" in err


def test_deploy_names_a_missing_port_and_a_bad_config(repo_root, tmp_path):
    err = run_tool(repo_root, "deploy.py", "--port", "/dev/ttyNOPE0")
    assert err.startswith("deploy: serial port /dev/ttyNOPE0 does not exist")
    bad = tmp_path / "config.json"
    bad.write_text(GOOD_CONFIG.replace('"10.0.0.2"', '"10.0.0.2", "port": 0'))
    err = run_tool(repo_root, "deploy.py", "--port", "/dev/ttyNOPE0", "--config", str(bad))
    assert err.startswith("deploy: config") and "mqtt.port" in err
    assert WIFI_PW not in err and MQTT_PW not in err


# -- the same modules under the real MicroPython -------------------------------

MPY_SMOKE = r"""
import sys, os

class Mod:
    pass

machine = Mod()
machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET = 1, 2, 3
machine.reset_cause = lambda: 3
class WDT:
    def __init__(self, timeout):
        self.timeout = timeout
    def feed(self):
        pass
machine.WDT = WDT
class Pin:
    IN, PULL_UP = 1, 2
    def __init__(self, *a):
        pass
    def value(self):
        return 1
machine.Pin = Pin
class UART:
    IRQ_RXIDLE, INV_RX = 4, 1
    def __init__(self, n, **kw):
        self.kw = kw
    def irq(self, handler, trigger=0):
        self.handler = handler
    def readinto(self, buf, nbytes=None):
        return None
    def any(self):
        return 0
machine.UART = UART
sys.modules["machine"] = machine

network = Mod()
network.hostname = lambda name: None
class WLAN:
    IF_STA, PM_NONE, PM_PERFORMANCE, PM_POWERSAVE = 0, 0, 1, 2
    def __init__(self, i):
        self.st = 1000
    def active(self, on=None):
        return True
    def config(self, **kw):
        pass
    def isconnected(self):
        return False
    def status(self, what=None):
        if what:
            raise OSError(1)
        return self.st
    def connect(self, ssid, key):
        self.st = 202
    def disconnect(self):
        pass
network.WLAN = WLAN
sys.modules["network"] = network

from firmware import clock, device, safeboot, storage, system, uart_source, watchdog, wifi

c = clock.Clock()
print("time", c.time() > 0 or c.time() == 0)
link = wifi.WiFi("home", "secret-pw-1", "stue", c, "powersave")
print("poll", link.poll(), link.state(), link.rssi())
st = storage.FlashStorage("/data")
st.write("x", b"1")
st.write("x", b"22")
print("storage", st.read("x"), st.read("nope"))
print("system", system.System().reset_cause(), system.System().free_heap() > 0,
      system.System().largest_free_block())
w = watchdog.make(60)
w.feed()
print("wdt", w.started)
print("safeboot", safeboot.requested(None, "/safeboot"))
cfg, errors = device.load_config("/nope.json")
print("config", errors[0].split(":")[0])
try:
    1 / 0
except Exception as e:
    device.record_crash(e, st)
print("crash", b"ZeroDivisionError" in st.read("last_crash"))
"""


def test_firmware_modules_run_under_micropython(mpy, tmp_path, repo_root):
    script = tmp_path / "smoke.py"
    script.write_text(MPY_SMOKE)
    files = [(str(p), "/lib/firmware/" + p.name) for p in (repo_root / "firmware").glob("*.py")]
    p = mpy(script, files=files)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    for line in ("time True", "poll False wrong_password None",
                 "storage b'22' None", "system watchdog True None", "wdt True",
                 "safeboot None", "config /nope.json", "crash True"):
        assert line in out, out


@pytest.mark.parametrize("partitions", [1, 0])
def test_deploy_puts_the_code_in_romfs_where_the_board_has_a_partition(repo_root, tmp_path, partitions):
    """With a fake mpremote that answers the ROMFS query: the image goes to the
    partition, or, without one, the .mpy files go to /lib and deploy says what it costs."""
    import subprocess

    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.txt"
    tool = bindir / "mpremote"
    tool.write_text("#!/bin/sh\nprintf '%%s' \"$*\" | tr '\\n' '|' >> %s\necho >> %s\n"
                    "case \"$*\" in *rom_ioctl*) echo 'romfs %d';; esac\n" % (log, log, partitions))
    tool.chmod(0o755)
    env = dict(os.environ, PATH=str(bindir) + os.pathsep + os.environ["PATH"])
    p = subprocess.run([sys.executable, str(repo_root / "tools" / "deploy.py"), "--port", "COM3"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    copy = log.read_text().splitlines()[-1]
    assert "rm('/lib/' + p)" in copy and copy.endswith("+ reset")
    if partitions:
        assert "+ romfs deploy " in copy and copy.split("romfs deploy ")[1].split()[0].endswith("hanport.romfs")
        assert "fs cp -r" not in copy and "ROMFS partition (run from flash" in p.stdout
    else:
        assert "romfs deploy" not in copy and copy.count("fs cp -r") == 2
        assert "no ROMFS partition" in p.stdout and "KB more heap" in p.stdout
