"""The ESP32 device objects under CPython, with fakes only for what this PC lacks.

machine, network and the frozen umqtt.simple are replaced by small fakes in
sys.modules; MicroPython's time.ticks_* and sys.print_exception are added to
CPython's modules for the duration of a test.
"""
import errno
import importlib
import os
import sys
import traceback
import types

import pytest

from hanport.ports import BrokerRefused

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

        def readinto(self, buf):
            if not self.chunks:
                return None
            c = self.chunks.pop(0)
            buf[:len(c)] = c
            return len(c)

    def reset():
        m.resets += 1
        raise Reset()

    m.WDT, m.Pin, m.UART, m.reset = WDT, Pin, UART, reset
    return m


class FakeWLAN:
    IF_STA = 0
    PM_NONE, PM_PERFORMANCE, PM_POWERSAVE = 0, 1, 2

    def __init__(self, log):
        self.log = log
        self.is_active = False
        self.code = 1000
        self.connected = False
        self.connects = []

    def active(self, on=None):
        if on is None:
            return self.is_active
        self.log.append(("active", on))
        self.is_active = on

    def config(self, **kw):
        self.log.append(("config", kw))

    def connect(self, ssid, key):
        self.connects.append((ssid, key))
        self.code = 1001

    def disconnect(self):
        self.code = 1000

    def isconnected(self):
        return self.connected

    def status(self, what=None):
        if what == "rssi":
            if not self.connected:
                raise OSError("STA is not connected")
            return -67
        return self.code


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


class FakeSocket:
    """Records each read and write with the timeout in force at that moment."""

    def __init__(self, incoming=b""):
        self.timeout = None  # a new socket blocks forever, like on the ESP32
        self.incoming = bytearray(incoming)
        self.closed_by_peer = False
        self.ops = []
        self.closed = False
        self.written = bytearray()

    def settimeout(self, t):
        self.timeout = t

    def setblocking(self, flag):
        self.timeout = None if flag else 0  # what umqtt's wait_msg does to us

    def write(self, buf, n=None):
        if self.closed:
            raise OSError(errno.EBADF)
        data = bytes(buf if n is None else buf[:n])
        self.ops.append(("write", self.timeout))
        self.written += data
        return len(data)

    def read(self, n):
        self.ops.append(("read", self.timeout))
        if not self.incoming:
            if self.timeout == 0:
                return None
            if self.closed_by_peer:
                return b""
            raise OSError(errno.ETIMEDOUT)
        data = bytes(self.incoming[:n])
        del self.incoming[:n]
        return data

    def close(self):
        self.closed = True


def fake_umqtt(sockets):
    """umqtt.simple's MQTTClient as far as the adapter relies on it."""
    pkg = types.ModuleType("umqtt")
    mod = types.ModuleType("umqtt.simple")

    class MQTTException(Exception):
        pass

    class MQTTClient:
        def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0):
            self.args = (client_id, server, port, user, password, keepalive)
            self.sock = None
            self.lw = None
            self.pid = 0

        def set_last_will(self, topic, msg, retain=False, qos=0):
            self.lw = (topic, msg, retain, qos)

        def connect(self, clean_session=True, timeout=None):
            self.sock = sockets.pop(0)
            self.sock.settimeout(timeout)
            self.sock.write(b"\x10CONNECT")
            resp = self.sock.read(4)
            assert resp[0] == 0x20 and resp[1] == 0x02  # IndexError on b""
            if resp[3] != 0:
                raise MQTTException(resp[3])

        def publish(self, topic, msg, retain=False, qos=0):
            assert isinstance(topic, bytes) and isinstance(msg, bytes)
            self.sock.write(b"\x30" + topic + msg)
            if qos == 1:
                while True:
                    op = self.wait_msg()
                    if op == 0x40:
                        self.sock.read(3)
                        return

        def wait_msg(self):
            res = self.sock.read(1)
            self.sock.setblocking(True)
            if res is None:
                return None
            if res == b"":
                raise OSError(-1)
            return res[0]

        def ping(self):
            self.sock.write(b"\xc0\0")

    mod.MQTTClient, mod.MQTTException = MQTTClient, MQTTException
    pkg.simple = mod
    return pkg, mod


@pytest.fixture
def fw(monkeypatch):
    """Fakes installed; returns a namespace with them and a fresh import function."""
    ns = types.SimpleNamespace()
    ns.ticks = Ticks()
    ns.machine = fake_machine()
    ns.network = fake_network()
    ns.sockets = []
    ns.umqtt, ns.umqtt_simple = fake_umqtt(ns.sockets)
    import time
    for name in ("ticks_ms", "ticks_diff", "sleep_ms"):
        monkeypatch.setattr(time, name, getattr(ns.ticks, name), raising=False)
    monkeypatch.setattr(sys, "print_exception", lambda e, f: traceback.print_exception(
        type(e), e, e.__traceback__, file=f), raising=False)
    for name, mod in (("machine", ns.machine), ("network", ns.network),
                      ("umqtt", ns.umqtt), ("umqtt.simple", ns.umqtt_simple)):
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
    wlan.connected, wlan.code = True, 1010
    assert link.poll() is True
    assert link.rssi() == -67


def test_wifi_backs_off_exponentially_after_failures(fw):
    wifi, link, wlan = make_wifi(fw)
    wifi.getrandbits = lambda bits: 0  # no jitter: the full delay
    waits = []
    link.poll()
    for _ in range(10):
        wlan.code = 202  # wrong password: the attempt failed
        link.poll()
        n = len(wlan.connects)
        waited = 0
        while len(wlan.connects) == n:
            fw.ticks.now += 100
            waited += 100
            link.poll()
        waits.append(waited)
    assert waits[:4] == [2000, 4000, 8000, 16000]
    assert max(waits) == wifi.BACKOFF_CAP_MS
    assert waits[-1] == wifi.BACKOFF_CAP_MS


def test_wifi_backoff_jitter_stays_within_half_the_delay(fw):
    wifi, link, _ = make_wifi(fw)
    for r in (0, 128, 255):
        wifi.getrandbits = lambda bits, r=r: r
        for fails in range(1, 12):
            d = link.backoff_ms(fails)
            full = min(wifi.BACKOFF_FIRST_MS * 2 ** (fails - 1), wifi.BACKOFF_CAP_MS)
            assert full // 2 <= d <= full


def test_wifi_gives_up_on_an_attempt_that_hangs(fw):
    wifi, link, wlan = make_wifi(fw)
    link.poll()
    fw.ticks.now += wifi.ATTEMPT_MS
    link.poll()  # still "connecting" after the limit: counted as failed
    fw.ticks.now += wifi.BACKOFF_FIRST_MS
    link.poll()
    assert len(wlan.connects) == 2


def test_wifi_lets_the_driver_retry_after_a_drop(fw):
    _, link, wlan = make_wifi(fw)
    link.poll()
    wlan.connected, wlan.code = True, 1010
    assert link.poll()
    wlan.connected, wlan.code = False, 1001  # the driver reconnects by itself
    fw.ticks.now += 1000
    assert link.poll() is False
    assert len(wlan.connects) == 1
    assert link.rssi() is None


def test_wifi_never_shows_the_password(fw):
    _, link, wlan = make_wifi(fw)
    link.poll()
    assert WIFI_PW not in repr(link) + link.state()


# -- MQTT -------------------------------------------------------------------

CONNACK_OK = b"\x20\x02\x00\x00"


def make_client(fw, *incoming, timeout_s=7):
    m = fw.load("firmware.mqtt_umqtt")
    socks = [FakeSocket(i) for i in incoming]
    fw.sockets[:] = socks
    c = m.UmqttClient("stue", "broker", 1883, "han", MQTT_PW, 60, b"han/stue/status",
                      b"offline", timeout_s=timeout_s)
    return m, c, socks


def blocking_ops(sock):
    return [op for op in sock.ops if op[1] != 0]


def test_mqtt_passes_credentials_as_bytes_and_the_will_retained(fw):
    _, c, _ = make_client(fw, CONNACK_OK)
    assert c._c.args == (b"stue", "broker", 1883, b"han", MQTT_PW.encode(), 60)
    assert c._c.lw == (b"han/stue/status", b"offline", True, 0)


def test_mqtt_every_blocking_call_has_the_timeout(fw):
    _, c, (s,) = make_client(fw, CONNACK_OK + b"\x40\x02\x00\x01")
    c.connect()
    s.timeout = None  # what umqtt's wait_msg() leaves behind
    c.publish(b"han/stue/list2", "{\"w\": 1}", retain=False)
    s.timeout = None
    c.publish("han/stue/status", b"online", True, qos=1)  # waits for PUBACK in wait_msg
    s.timeout = None
    c.ping()
    ops = blocking_ops(s)
    assert ops and all(t == 7 for _, t in ops), s.ops
    assert b"\x30han/stue/list2{\"w\": 1}" in s.written  # str payload sent as bytes


def test_mqtt_refused_connect_is_broker_refused_and_closes(fw):
    _, c, (s,) = make_client(fw, b"\x20\x02\x00\x05")
    with pytest.raises(BrokerRefused) as e:
        c.connect()
    assert e.value.code() == 5
    assert s.closed


def test_mqtt_broker_closing_during_connect_is_oserror(fw):
    _, c, (s,) = make_client(fw, b"")
    s.closed_by_peer = True  # read() returns b"": umqtt raises IndexError
    with pytest.raises(OSError):
        c.connect()
    assert s.closed


def test_mqtt_connect_timeout_is_oserror(fw):
    _, c, (s,) = make_client(fw, b"")
    with pytest.raises(OSError) as e:
        c.connect()
    assert e.value.args[0] == errno.ETIMEDOUT


def test_mqtt_ping_consumes_the_pingresp_without_blocking(fw):
    _, c, (s,) = make_client(fw, CONNACK_OK)
    c.connect()
    c.ping()
    assert s.written.endswith(b"\xc0\x00")
    s.incoming += b"\xd0\x00"  # PINGRESP
    fw.ticks.now += 30000
    c.ping()  # reads the answer, then pings again
    assert not s.incoming
    assert s.written.count(b"\xc0\x00") == 2
    fw.ticks.now += 30000
    with pytest.raises(OSError):  # the second ping was never answered: half-open link
        c.ping()


def test_mqtt_ping_does_not_stack_pings_inside_the_timeout(fw):
    _, c, (s,) = make_client(fw, CONNACK_OK)
    c.connect()
    c.ping()
    fw.ticks.now += 1000
    c.ping()
    assert s.written.count(b"\xc0\x00") == 1


def test_mqtt_ping_notices_a_closed_connection(fw):
    _, c, (s,) = make_client(fw, CONNACK_OK)
    c.connect()
    s.timeout = 5
    s.closed_by_peer = True
    s.read = lambda n: b""  # the broker closed: reads return b"" at once
    with pytest.raises(OSError):
        c.ping()


def test_mqtt_publish_without_connection_is_oserror(fw):
    _, c, _ = make_client(fw)
    with pytest.raises(OSError):
        c.publish(b"t", b"p")
    with pytest.raises(OSError):
        c.ping()


def test_mqtt_disconnect_never_raises(fw):
    _, c, (s,) = make_client(fw, CONNACK_OK)
    c.disconnect()  # never connected
    c.connect()
    s.closed = True  # writes now fail
    c.disconnect()
    c.disconnect()


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


@pytest.mark.parametrize("cause, name", [(1, "power_on"), (2, "hard_reset"), (3, "watchdog"),
                                         (5, "soft_reset"), (0, "unknown_0")])
def test_system_names_the_reset_cause(fw, cause, name):
    fw.machine.cause = cause
    s = fw.load("firmware.system").System()
    assert s.reset_cause() == name
    assert s.free_heap() == 51200


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
    assert hasattr(client, "connect") and hasattr(client, "ping")
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
    """Meter bytes through the UART source, Wi-Fi up, umqtt out: the shapes fit hanport.app."""
    from hanport import app, config

    cfg = config.load(GOOD_CONFIG)
    fw.machine.uart_chunks[:] = [AIDON_LIST2[:100], AIDON_LIST2[100:]]
    sock = FakeSocket(CONNACK_OK)
    fw.sockets[:] = [sock]
    storage = fw.load("firmware.storage").FlashStorage(str(tmp_path))
    device = fw.load("firmware.device")
    real_run = app.run
    steps = []

    def bounded_run(*args):
        fw.network.wlan.connected, fw.network.wlan.code = True, 1010
        return real_run(*args, stop=lambda a: steps.append(1) or len(steps) > 50)

    monkeypatch.setattr(app, "run", bounded_run)
    device.run(cfg, storage)
    written = bytes(sock.written)
    assert b"han/stue/status" in written and b"online" in written
    assert b"han/stue/list2" in written and b"1362" in written
    # Nothing ever waited without a timeout (the closing DISCONNECT gets 1 s).
    assert set(t for _, t in blocking_ops(sock)) == {10, 1}, sock.ops
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
    def readinto(self, buf):
        return None
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

class Sock:
    def __init__(self):
        self.data = bytearray(b"\x20\x02\x00\x00\xd0\x00")
        self.t = None
    def settimeout(self, t):
        self.t = t
    def write(self, b, n=None):
        assert self.t, "write without a timeout"
        return len(b)
    def read(self, n):
        if not self.data:
            return None if self.t == 0 else b""
        d = bytes(self.data[:n])
        self.data = self.data[n:]
        return d
    def close(self):
        pass

umqtt_simple = Mod()
class MQTTException(Exception):
    pass
class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0):
        self.sock = None
    def set_last_will(self, topic, msg, retain=False, qos=0):
        pass
    def connect(self, clean_session=True, timeout=None):
        self.sock = Sock()
        self.sock.settimeout(timeout)
        r = self.sock.read(4)
        if r[3]:
            raise MQTTException(r[3])
    def publish(self, topic, msg, retain=False, qos=0):
        self.sock.write(topic)
    def ping(self):
        self.sock.write(b"\xc0\0")
umqtt_simple.MQTTClient, umqtt_simple.MQTTException = MQTTClient, MQTTException
umqtt = Mod()
umqtt.simple = umqtt_simple
sys.modules["umqtt"] = umqtt
sys.modules["umqtt.simple"] = umqtt_simple

from firmware import clock, device, mqtt_umqtt, safeboot, storage, system, uart_source, watchdog, wifi

c = clock.Clock()
print("time", c.time() > 0 or c.time() == 0)
link = wifi.WiFi("home", "secret-pw-1", "stue", c, "powersave")
print("poll", link.poll(), link.state(), link.rssi())
m = mqtt_umqtt.UmqttClient("stue", "h", 1883, "u", "p", 60, b"t/status", b"offline")
m.connect()
m.publish("t/x", "payload")
m.ping()
m.ping()
m.disconnect()
print("mqtt ok")
st = storage.FlashStorage("/data")
st.write("x", b"1")
st.write("x", b"22")
print("storage", st.read("x"), st.read("nope"))
print("system", system.System().reset_cause(), system.System().free_heap() > 0)
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
    for line in ("time True", "poll False wrong_password None", "mqtt ok",
                 "storage b'22' None", "system watchdog True", "wdt True",
                 "safeboot None", "config /nope.json", "crash True"):
        assert line in out, out
