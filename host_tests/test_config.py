"""Configuration: defaults, one named error per bad key, passwords never shown."""
import json
import random
import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpy import describe

from hanport import config

WIFI_PW = "wifi-secret-123"
MQTT_PW = "mqtt-secret-456"
GOOD = {
    "device": {"name": "stue"},
    "wifi": {"ssid": "home", "password": WIFI_PW},
    "mqtt": {"host": "192.168.1.10", "user": "han", "password": MQTT_PW},
}


def cfg_with(**groups):
    """GOOD with some keys changed: cfg_with(mqtt={"port": 0}, watchdog_s=5)."""
    user = json.loads(json.dumps(GOOD))
    for key, value in groups.items():
        if isinstance(value, dict):
            user.setdefault(key, {}).update(value)
        else:
            user[key] = value
    return config.load(json.dumps(user))


def errors_for(**groups):
    return config.check(cfg_with(**groups))


def test_defaults_suit_an_aidon_meter():
    cfg = config.load(json.dumps(GOOD))
    assert config.check(cfg) == []
    assert cfg["han"] == {"uart": 2, "rx": 16, "tx": 17, "baud": 2400, "parity": "E",
                          "invert": False}
    m = cfg["mqtt"]
    assert (m["port"], m["keepalive"], m["raw_frames"]) == (1883, 60, False)
    assert cfg["diag_interval_s"] == 60
    assert cfg["safe_boot_pin"] == 0
    assert cfg["ntp_host"] == ""


def test_names_derive_from_the_device_name():
    cfg = config.load(json.dumps(GOOD))
    assert cfg["mqtt"]["base_topic"] == "han/stue"
    assert cfg["mqtt"]["client_id"] == "stue"
    assert cfg["wifi"]["hostname"] == "stue"
    cfg = cfg_with(mqtt={"base_topic": "home/meter"})
    assert cfg["mqtt"]["base_topic"] == "home/meter"


def test_merging_keeps_defaults_of_a_group_given_in_part():
    cfg = cfg_with(han={"parity": "N"})
    assert cfg["han"]["parity"] == "N" and cfg["han"]["baud"] == 2400


def test_the_example_config_is_valid(repo_root):
    with open(repo_root / "config.example.json") as f:
        cfg = config.load(f.read())
    assert config.check(cfg) == []
    assert set(cfg) == set(config.DEFAULTS)
    for group, default in config.DEFAULTS.items():
        if isinstance(default, dict):
            assert set(cfg[group]) == set(default), group


def test_empty_text_is_all_defaults_and_reports_the_missing_keys():
    errors = config.check(config.load(""))
    assert any(e.startswith("wifi.ssid: missing") for e in errors)
    assert any(e.startswith("mqtt.host: missing") for e in errors)


def test_not_json_is_a_value_error():
    with pytest.raises(ValueError):
        config.load("{wifi: }")
    with pytest.raises(ValueError):
        config.load("[1, 2]")


@pytest.mark.parametrize("change, key", [
    (dict(wifi={"ssid": ""}), "wifi.ssid"),
    (dict(wifi={"password": "short"}), "wifi.password"),
    (dict(wifi={"pm": "turbo"}), "wifi.pm"),
    (dict(wifi={"hostname": "bad host"}), "wifi.hostname"),
    (dict(device={"name": "a/b"}), "device.name"),
    (dict(han={"parity": "X"}), "han.parity"),
    (dict(han={"parity": 0}), "han.parity"),
    (dict(han={"rx": 40}), "han.rx"),
    (dict(han={"rx": 7}), "han.rx"),  # a flash pin
    (dict(han={"tx": 34}), "han.tx"),  # input only
    (dict(han={"tx": 16}), "han.tx"),  # same as rx
    (dict(han={"uart": 0}), "han.uart"),
    (dict(han={"baud": "2400"}), "han.baud"),
    (dict(han={"invert": 1}), "han.invert"),
    (dict(mqtt={"port": 0}), "mqtt.port"),
    (dict(mqtt={"port": 65536}), "mqtt.port"),
    (dict(mqtt={"port": "1883"}), "mqtt.port"),
    (dict(mqtt={"port": True}), "mqtt.port"),
    (dict(mqtt={"host": ""}), "mqtt.host"),
    (dict(mqtt={"keepalive": 5}), "mqtt.keepalive"),
    (dict(mqtt={"keepalive": 70000}), "mqtt.keepalive"),
    (dict(mqtt={"base_topic": "han/+/x"}), "mqtt.base_topic"),
    (dict(mqtt={"base_topic": "han/#"}), "mqtt.base_topic"),
    (dict(mqtt={"base_topic": "/han"}), "mqtt.base_topic"),
    (dict(mqtt={"base_topic": "han/"}), "mqtt.base_topic"),
    (dict(mqtt={"raw_frames": "yes"}), "mqtt.raw_frames"),
    (dict(mqtt={"user": ""}), "mqtt.password"),  # a password without a user
    (dict(mqtt={"pasword": "x"}), "mqtt.pasword"),  # a typo is not silently ignored
    (dict(diag_interval_s=0), "diag_interval_s"),
    (dict(watchdog_s=5), "watchdog_s"),
    (dict(safe_boot_pin=16), "safe_boot_pin"),  # the HAN rx pin
    (dict(safe_boot_pin=99), "safe_boot_pin"),
    (dict(extra=1), "extra"),
    (dict(wifi="home"), "wifi"),
])
def test_each_bad_key_is_named(change, key):
    errors = errors_for(**change)
    assert len(errors) == 1 and errors[0].startswith(key + ": "), errors


def test_watchdog_and_safe_boot_can_be_switched_off():
    assert errors_for(watchdog_s=0, safe_boot_pin=None) == []


def test_redacted_hides_passwords_and_keeps_the_rest():
    cfg = config.load(json.dumps(GOOD))
    shown = config.redacted(cfg)
    text = repr(shown) + json.dumps(shown)
    assert WIFI_PW not in text and MQTT_PW not in text
    assert shown["wifi"]["password"] == "***" and shown["mqtt"]["password"] == "***"
    assert shown["mqtt"]["host"] == "192.168.1.10"
    assert cfg["wifi"]["password"] == WIFI_PW  # the original is untouched


def test_error_messages_never_quote_a_password():
    bad_pw = "x" * 70  # too long for WPA2
    cfg = cfg_with(wifi={"password": bad_pw}, mqtt={"password": 12345, "user": ""},
                   extra={"password": MQTT_PW})
    errors = config.check(cfg)
    assert any(e.startswith("wifi.password") for e in errors)
    assert any(e.startswith("mqtt.password") for e in errors)
    for e in errors:
        assert bad_pw not in e and "12345" not in e and MQTT_PW not in e


def test_micropython_reports_the_same_errors(mpy, tmp_path):
    cases = [GOOD, {}, {"han": {"parity": "X", "invert": 1, "rx": 7}, "mqtt": {"port": True}},
             {"device": {"name": "a/b"}, "watchdog_s": 5, "extra": 1, "wifi": "home"}]
    script = "import json\nfrom hanport import config\n"
    for case in cases:
        script += "print(json.dumps(sorted(config.check(config.load(%r)))))\n" % json.dumps(case)
    (tmp_path / "check.py").write_text(script)
    p = mpy(tmp_path / "check.py")
    assert p.returncode == 0, p.stdout + p.stderr
    got = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert got == [sorted(config.check(config.load(json.dumps(c)))) for c in cases]


# -- values the device, the ESP32's drivers or the broker would refuse (issue 8) --------

@pytest.mark.parametrize("change, key, words", [
    # mosquitto closes the connection without a CONNACK for these (tried on 2.0.11)
    (dict(mqtt={"base_topic": "han/\x01/x"}), "mqtt.base_topic", "control"),
    (dict(mqtt={"base_topic": "han\nx"}), "mqtt.base_topic", "control"),
    (dict(mqtt={"base_topic": "han\x00x"}), "mqtt.base_topic", "control"),
    (dict(mqtt={"base_topic": "han/\u0085"}), "mqtt.base_topic", "control"),
    (dict(mqtt={"base_topic": "han/\ufffe"}), "mqtt.base_topic", "noncharacter"),
    (dict(mqtt={"client_id": "stue\x7f"}), "mqtt.client_id", "control"),
    (dict(mqtt={"client_id": "stue\x00"}), "mqtt.client_id", "control"),
    (dict(mqtt={"user": "han\t"}), "mqtt.user", "control"),
    (dict(ha={"prefix": "home\x1bassistant"}), "ha.prefix", "control"),
    # MQTT packs these lengths in 16 bits: counted in UTF-8 bytes, not characters
    (dict(mqtt={"user": "u" * 65536}), "mqtt.user", "65535 bytes"),
    (dict(mqtt={"user": "\u00f8" * 32768}), "mqtt.user", "65535 bytes"),
    (dict(mqtt={"password": "p" * 65536}), "mqtt.password", "65535 bytes"),
    (dict(mqtt={"client_id": "\u00f8" * 33}), "mqtt.client_id", "64 bytes"),
    (dict(mqtt={"base_topic": "h" * 129}), "mqtt.base_topic", "128 bytes"),
    # the Wi-Fi driver copies at most 64 bytes of key and 32 of SSID
    (dict(wifi={"password": "\u00e5" * 60}), "wifi.password", "bytes in UTF-8"),
    (dict(wifi={"password": "\u00e5" * 32}), "wifi.password", "bytes in UTF-8"),
    (dict(wifi={"password": "g" * 64}), "wifi.password", "64 hex digits"),
    (dict(wifi={"password": "secret\x00pw"}), "wifi.password", "control"),
    (dict(wifi={"ssid": "\u00f8" * 17}), "wifi.ssid", "32 bytes"),
    # GPIOs the classic ESP32 does not have: a crash-and-reset loop
    (dict(han={"rx": 24}), "han.rx", "GPIO of the ESP32"),
    (dict(han={"rx": 20}), "han.rx", "GPIO of the ESP32"),
    (dict(han={"rx": 40}), "han.rx", "GPIO of the ESP32"),
    (dict(han={"rx": -1}), "han.rx", "GPIO of the ESP32"),
    (dict(han={"tx": 28}), "han.tx", "GPIO of the ESP32"),
    (dict(han={"tx": 31}), "han.tx", "GPIO of the ESP32"),
    (dict(safe_boot_pin=30), "safe_boot_pin", "GPIO of the ESP32"),
    (dict(han={"rx": 9}), "han.rx", "flash"),
    (dict(safe_boot_pin=6), "safe_boot_pin", "flash"),
    (dict(han={"rx": 3}), "han.rx", "console"),
    (dict(han={"tx": 1}), "han.tx", "console"),
    (dict(safe_boot_pin=1), "safe_boot_pin", "console"),
    (dict(han={"rx": 12}), "han.rx", "flash voltage"),
    (dict(han={"tx": 35}), "han.tx", "input only"),
    (dict(safe_boot_pin=34), "safe_boot_pin", "pull-up"),
    (dict(safe_boot_pin=39), "safe_boot_pin", "pull-up"),
    (dict(safe_boot_pin=17), "safe_boot_pin", "han.tx"),
    (dict(safe_boot_pin=True), "safe_boot_pin", "GPIO of the ESP32"),
    # mqtt.host as Home Assistant's docs write it
    (dict(mqtt={"host": " "}), "mqtt.host", "missing"),
    (dict(mqtt={"host": "\t"}), "mqtt.host", "missing"),
    (dict(mqtt={"host": "mqtt://192.168.1.10"}), "mqtt.host", "without a scheme"),
    (dict(mqtt={"host": "mqtts://broker.local:8883"}), "mqtt.host", "without a scheme"),
    (dict(mqtt={"host": "192.168.1.10:1883"}), "mqtt.host", "put the port in mqtt.port"),
    (dict(mqtt={"host": " 192.168.1.10"}), "mqtt.host", "spaces"),
    (dict(mqtt={"host": "192.168.1.10/"}), "mqtt.host", "host name or an IPv4"),
    (dict(mqtt={"host": "fe80::1"}), "mqtt.host", "IPv6"),
    (dict(mqtt={"host": 192}), "mqtt.host", "string"),
    (dict(ntp_host="pool.ntp.org:123"), "ntp_host", "port"),
    (dict(ntp_host=" "), "ntp_host", "host name"),
    # booleans are not numbers and numbers are not booleans
    (dict(mqtt={"port": False}), "mqtt.port", "integer"),
    (dict(mqtt={"keepalive": True}), "mqtt.keepalive", "integer"),
    (dict(mqtt={"port": 1883.0}), "mqtt.port", "integer"),
    (dict(han={"baud": True}), "han.baud", "integer"),
    (dict(han={"invert": 0}), "han.invert", "true or false"),
    (dict(mqtt={"raw_frames": 1}), "mqtt.raw_frames", "true or false"),
    (dict(ha={"discovery": 1}), "ha.discovery", "true or false"),
    (dict(ha={"discovery": "false"}), "ha.discovery", "true or false"),
    (dict(watchdog_s=False), "watchdog_s", "integer"),
    (dict(diag_interval_s=60.5), "diag_interval_s", "integer"),
    # a derived key of the wrong type is refused, not silently replaced
    (dict(wifi={"hostname": False}), "wifi.hostname", "string"),
    (dict(mqtt={"client_id": 0}), "mqtt.client_id", "string"),
    (dict(mqtt={"base_topic": None}), "mqtt.base_topic", "non-empty"),
    # the new keys
    (dict(ha={"prefix": ""}), "ha.prefix", "non-empty"),
    (dict(ha={"prefix": "homeassistant/"}), "ha.prefix", "end with /"),
    (dict(ha={"prefix": "$SYS"}), "ha.prefix", "$"),
    (dict(ha={"prefix": "ha/#"}), "ha.prefix", "wildcards"),
    (dict(ha={"prefx": "ha"}), "ha.prefx", "unknown key"),
    (dict(ha=True), "ha", "object"),
    (dict(tariff={"steps_kwh": []}), "tariff.steps_kwh", "increasing"),
    (dict(tariff={"steps_kwh": [5, 2]}), "tariff.steps_kwh", "increasing"),
    (dict(tariff={"steps_kwh": [2, 2]}), "tariff.steps_kwh", "increasing"),
    (dict(tariff={"steps_kwh": [0, 2]}), "tariff.steps_kwh", "increasing"),
    (dict(tariff={"steps_kwh": [2.5]}), "tariff.steps_kwh", "whole numbers"),
    (dict(tariff={"steps_kwh": [True]}), "tariff.steps_kwh", "whole numbers"),
    (dict(tariff={"steps_kwh": list(range(1, 22))}), "tariff.steps_kwh", "1..20"),
    (dict(tariff={"steps_kwh": [10001]}), "tariff.steps_kwh", "1..10000"),
    (dict(tariff={"steps_kwh": "2,5,10"}), "tariff.steps_kwh", "list"),
    (dict(language="no"), "language", "\"nb\""),
    (dict(language="EN"), "language", "\"en\""),
    # a lone surrogate (from a \ud800 escape) used to raise UnicodeEncodeError in deploy
    (dict(wifi={"ssid": "home\ud800"}), "wifi.ssid", "\\ud800"),
    (dict(mqtt={"password": "pw\udfff"}), "mqtt.password", "\\ud800"),
])
def test_a_value_that_would_stop_the_dongle_is_refused_by_name(change, key, words):
    errors = errors_for(**change)
    assert len(errors) == 1, errors
    assert errors[0].startswith(key + ": ") and words in errors[0], errors


@pytest.mark.parametrize("change", [
    dict(wifi={"password": "\u00e5" * 31 + "x"}),  # 63 bytes
    dict(wifi={"password": "\u00e5" * 4}),  # 8 bytes
    dict(wifi={"password": "0123456789abcdefABCDEF" * 2 + "0123456789abcdefAB"}),  # a PSK
    dict(wifi={"password": ""}),  # an open network
    dict(wifi={"ssid": "\u00f8" * 16}),  # 32 bytes
    dict(mqtt={"host": "broker.local"}),
    dict(mqtt={"host": "my_broker"}),
    dict(mqtt={"client_id": "\u00f8" * 32}),
    dict(mqtt={"user": "h\u00e5n", "password": "p\u00e5ss\tord"}),  # a password is binary
    dict(mqtt={"base_topic": "hjem/m\u00e5ler"}),  # UTF-8 topics are fine
    dict(han={"rx": 36, "tx": 33}, safe_boot_pin=13),
    dict(han={"rx": 4, "tx": 12}, safe_boot_pin=None),
    dict(ha={"discovery": False, "prefix": "ha"}),
    dict(tariff={"steps_kwh": [1]}),
    dict(tariff={"steps_kwh": list(range(1, 21))}),
    dict(language="nb"),
    dict(ntp_host="pool.ntp.org"),
])
def test_values_the_dongle_can_use_pass(change):
    assert errors_for(**change) == []


def test_new_keys_have_the_documented_defaults():
    cfg = config.load(json.dumps(GOOD))
    assert cfg["ha"] == {"discovery": True, "prefix": "homeassistant"}
    assert list(cfg["tariff"]["steps_kwh"]) == [2, 5, 10, 15, 20, 25, 50, 75, 100]
    assert cfg["language"] == "en"


def test_a_norwegian_device_name_gets_one_message_and_a_suggestion():
    errors = errors_for(device={"name": "kj\u00f8kken"})
    assert errors == [
        "device.name: must be 1..32 characters a-z, A-Z, 0-9 or '-', not starting or "
        "ending with '-': it becomes the Wi-Fi (DHCP) host name, which allows only these; "
        "try \"kjokken\""]
    assert "try \"Aere-pa-As\"" in errors_for(device={"name": "\u00c6re p\u00e5 \u00c5s"})[0]
    # a host name the user did set is still checked
    errors = errors_for(device={"name": "kj\u00f8kken"}, wifi={"hostname": "a b"})
    assert [e.split(":")[0] for e in errors] == ["device.name", "wifi.hostname"]


# -- whole files: parse() and the device's load_config ---------------------------------

def good_bytes(**extra):
    user = json.loads(json.dumps(GOOD))
    user.update(extra)
    return json.dumps(user).encode()


def test_a_utf8_bom_is_accepted():
    cfg, errors = config.parse(b"\xef\xbb\xbf" + good_bytes())
    assert errors == [] and cfg["wifi"]["ssid"] == "home"
    assert config.check(config.load("\ufeff" + good_bytes().decode())) == []


@pytest.mark.parametrize("data, words", [
    (b'{"wifi": {"ssid": "home",\n "password": "bl\xe5b\xe6r"}}', "not UTF-8 text (line 2)"),
    (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # an encoded surrogate: MicroPython would take it
    (b'{"a": "\xc0\xaf"}', "not UTF-8"),  # overlong
    (b'{"a": "\xe2\x82"}', "not UTF-8"),  # cut short
    (b'{"safe_boot_pin": 0,4"ntp_host": ""}', "not valid JSON"),
    (b"{1:2}", "not valid JSON"),
    (b"[" * 4000 + b"]" * 4000, "not valid JSON (nested too deeply)"),
    (b'{"a":' * 1300 + b"1" + b"}" * 1300, "not valid JSON (nested too deeply)"),
    (b"[1, 2]", "the top level must be an object"),
    (b'"wifi"', "the top level must be an object"),
    (b" " * 8193, "larger than 8192 bytes"),
    (bytes(range(256)), "not UTF-8"),
])
def test_a_malformed_file_is_one_message_naming_the_file(data, words):
    cfg, errors = config.parse(data, "/config.json")
    assert cfg is None and len(errors) == 1, errors
    assert errors[0].startswith("/config.json: ") and words in errors[0], errors


def test_an_empty_file_is_all_defaults():
    for data in (b"", b" \r\n\t", b"\xef\xbb\xbf"):
        cfg, errors = config.parse(data)
        assert [e.split(":")[0] for e in errors] == ["wifi.ssid", "mqtt.host"]


@pytest.fixture
def device(monkeypatch, repo_root):
    """firmware.device under CPython: machine is the only thing this PC lacks."""
    import importlib
    import types

    monkeypatch.setitem(sys.modules, "machine", types.ModuleType("machine"))
    for name in ("firmware.device", "firmware.safeboot"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # load_config imports hanport.config and forgets it after use: hand it this
    # file's module both ways it may be found (sys.modules and the package).
    import hanport

    monkeypatch.setitem(sys.modules, "hanport.config", config)
    monkeypatch.setattr(hanport, "config", config, raising=False)
    return importlib.import_module("firmware.device")


def test_the_device_reads_at_most_max_bytes_and_reports_the_list(device, tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(good_bytes())
    cfg, errors = device.load_config(str(path))
    assert errors == [] and cfg["mqtt"]["host"] == "192.168.1.10"
    path.write_bytes(good_bytes(han={"rx": 24}, safe_boot_pin=36))
    cfg, errors = device.load_config(str(path))
    assert [e.split(":")[0] for e in errors] == ["han.rx", "safe_boot_pin"]
    path.write_bytes(good_bytes(x="y" * config.MAX_BYTES))
    cfg, errors = device.load_config(str(path))
    assert cfg is None and errors == [str(path) + ": larger than 8192 bytes: is it the right file?"]
    cfg, errors = device.load_config(str(tmp_path / "none.json"))
    assert cfg is None and "missing" in errors[0]


def test_the_device_survives_a_parser_that_raises(device, tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_bytes(good_bytes())

    def boom(data, name):
        raise MemoryError()

    monkeypatch.setattr(config, "parse", boom)
    assert device.load_config(str(path)) == (None, [str(path) + ": cannot be checked (MemoryError)"])


def test_deploy_refuses_a_bad_config_in_one_line(tmp_path, capsys):
    import deploy

    path = tmp_path / "c.json"
    path.write_bytes(good_bytes(device={"name": "\ud800"}).replace(b"\\ud800", b"\\ud800"))
    assert deploy.main(["--port", "/dev/nonexistent", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deploy: config %s: device.name: " % path), err
    path.write_bytes(b"\xef\xbb\xbf" + good_bytes())
    deploy.check_config(str(path))  # no Failure
    path.write_bytes(b'{"wifi": {"password": "bl\xe5"}}')
    with pytest.raises(deploy.Failure, match="config .*: not UTF-8 text"):
        deploy.check_config(str(path))
    with pytest.raises(deploy.Failure, match="cannot read config"):
        deploy.check_config(str(tmp_path))  # a directory


# -- property: any file gives a list of problems, each naming a key or the file --------

KNOWN = set()
for _g, _d in config.DEFAULTS.items():
    KNOWN.add(_g)
    if isinstance(_d, dict):
        KNOWN.update(_g + "." + _k for _k in _d)

MARK = "S3cr3tMark"  # put into every generated password: must never appear in a message
INTERESTING_TEXT = [
    "", " ", "\t", "mqtt://192.168.1.10", "192.168.1.10:1883", "fe80::1", "kj\u00f8kken",
    "han/+/x", "han/#", "/han", "han//x", "$SYS", "a\x00b", "a\x01b", "\u0085", "\ufffe",
    "\ud800", "\udc00x", "\u00e5" * 60, "\u00f8" * 17, "a" * 64, "0123abcd" * 8, "x" * 300,
    "homeassistant", "E", "N", "O", "nb", "en", "none", "performance", "192.168.1.10",
    "\U0001f600", "null", "true", "1883",
]
INTERESTING_INT = [-1, 0, 1, 2, 3, 6, 11, 12, 16, 17, 20, 24, 28, 33, 34, 39, 40, 15, 30,
                   300, 2400, 3600, 65535, 65536, 86400, 10 ** 20, -(10 ** 30)]


def random_text(rnd):
    k = rnd.randrange(4)
    if k == 0:
        return rnd.choice(INTERESTING_TEXT)
    n = rnd.randrange(0, 12)
    if k == 1:
        return "".join(chr(rnd.randrange(32, 127)) for _ in range(n))
    if k == 2:
        return "".join(chr(rnd.choice((rnd.randrange(0, 0x250), rnd.randrange(0xD7F0, 0xE010),
                                       rnd.randrange(0xFDC0, 0x10000), rnd.randrange(0x10000, 0x110000))))
                       for _ in range(n))
    return "".join(rnd.choice("abc-_/ .:\u00f8\x00\x7f") for _ in range(n))


def random_value(rnd, depth=0):
    k = rnd.randrange(12 if depth < 3 else 9)
    if k == 0:
        return None
    if k == 1:
        return rnd.random() < 0.5
    if k == 2:
        return rnd.choice(INTERESTING_INT)
    if k == 3:
        return rnd.randrange(-100, 70000)
    if k == 4:
        return rnd.choice((0.0, 1.5, -2.25, 1e300, 2400.0, float("nan"), float("inf")))
    if k in (5, 6, 7, 8):
        return random_text(rnd)
    if k in (9, 10):
        return [random_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 5))]
    return {random_text(rnd): random_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 4))}


def random_config(rnd):
    """A config object: the good one (or {}) with random values in random keys."""
    user = json.loads(json.dumps(GOOD)) if rnd.random() < 0.8 else {}
    for _ in range(rnd.randrange(0, 6)):
        group = rnd.choice(sorted(config.DEFAULTS))
        default = config.DEFAULTS[group]
        k = rnd.randrange(10)
        if k == 0:
            user[group] = random_value(rnd)
        elif k == 1:
            user[random_text(rnd)] = random_value(rnd)
        elif k == 2:
            user.pop(group, None)
        elif isinstance(default, dict):
            g = user.get(group)
            if not isinstance(g, dict):
                g = user[group] = {}
            key = rnd.choice(sorted(default)) if k > 3 else random_text(rnd)
            g[key] = random_value(rnd)
        else:
            user[group] = random_value(rnd)
    for g in ("wifi", "mqtt"):
        if isinstance(user.get(g), dict) and isinstance(user[g].get("password"), str):
            user[g]["password"] = MARK + user[g]["password"]
    return user


def random_file(rnd):
    """Bytes of a config file: valid JSON with random values, then maybe damaged."""
    k = rnd.randrange(16)
    if k == 3:  # at the size limit, or one byte over it
        data = good_bytes()
        return data + b" " * (rnd.choice((config.MAX_BYTES, config.MAX_BYTES + 1)) - len(data))
    if k == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
    if k == 1:
        n = rnd.randrange(1, 4100)
        return rnd.choice((b"[" * n + b"]" * n, b'{"a":' * (n // 5) + b"1" + b"}" * (n // 5)))
    if k == 2:
        return rnd.choice((b"{1:2}", b'{"safe_boot_pin": 0,4"ntp_host": ""}', b"{null: 1}",
                           b'{"wifi": {1: 2}}', b'{"han": {"rx": 16 "tx": 17}}', b"{'a': 1}"))
    text = json.dumps(random_config(rnd), ensure_ascii=rnd.random() < 0.3)
    k = rnd.randrange(10)
    if k == 0 and text:
        text = text[:rnd.randrange(len(text))]  # cut short
    elif k == 1:
        i = rnd.randrange(len(text) + 1)
        text = text[:i] + rnd.choice(',:{}[]"\\ ') + text[i:]
    elif k == 2 and text:
        i = rnd.randrange(len(text))
        text = text[:i] + text[i + 1:]
    k = rnd.randrange(10)
    if k == 0:
        data = text.encode("latin-1", "replace")
    else:
        data = text.encode("utf-8", "surrogatepass")  # a lone surrogate as its 3 bytes
    if k == 1:
        data = b"\xef\xbb\xbf" + data
    return data


def problems_are_well_formed(data, cfg, errors, name):
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    for e in errors:
        e.encode("ascii")  # printable on any console; nothing of the file's bytes
        assert "\n" not in e and MARK not in e, e
        assert ": " in e, e
    if cfg is None:
        assert len(errors) == 1 and errors[0].startswith(name + ": "), errors
        return
    names = set(KNOWN)
    for key, value in cfg.items():
        names.add(config._show(key))
        if isinstance(value, dict) and key in config.DEFAULTS:
            names.update(key + "." + config._show(k) for k in value)
    for e in errors:
        key = e.split(": ")[0]
        assert key in names, (e, sorted(names))


def test_the_generator_reaches_every_kind_of_problem():
    rnd = random.Random(8)
    seen = set()
    for _ in range(600):
        data = random_file(rnd)
        cfg, errors = config.parse(data, "F")
        for e in errors:
            seen.add(e.split(": ")[1].split(" ")[0] if e.startswith("F: ") else e.split(": ")[0])
    for what in ("not", "larger", "wifi.password", "mqtt.host", "han.rx", "device.name",
                 "tariff.steps_kwh", "ha.prefix", "language", "safe_boot_pin"):
        assert what in seen, sorted(seen)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False))
def test_any_file_gives_a_list_naming_keys_never_a_traceback(rnd):
    data = random_file(rnd)
    cfg, errors = config.parse(data, "/config.json")
    problems_are_well_formed(data, cfg, errors, "/config.json")
    if cfg is not None and not errors:
        # accepted: what the loop reads is there with the right types
        assert isinstance(cfg["mqtt"]["port"], int) and cfg["mqtt"]["host"].strip()
        assert isinstance(cfg["ha"]["discovery"], bool)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False))
def test_deploy_check_never_raises_anything_but_its_one_line_failure(rnd, tmp_path_factory):
    import deploy

    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(random_file(rnd))
    try:
        deploy.check_config(str(path))
    except deploy.Failure as e:
        msg = str(e)
        assert "\n" not in msg and MARK not in msg
        assert msg.startswith("config %s: " % path)
        msg.encode("ascii")


MPY_CHECK = """
import gc
import json
import sys

class Mod:
    pass

sys.modules["machine"] = Mod()  # firmware.safeboot imports it; load_config does not use it
from firmware import device

for i in range(int(sys.argv[1])):
    path = "/cfg/%d.json" % i
    cfg, errors = device.load_config(path)
    print(json.dumps([cfg is not None, errors]))

def heap():
    gc.collect()
    return gc.mem_alloc()

R = []
def loaded():
    from hanport import config
    R.append(heap())
def forgotten():
    device.forget("hanport.config")
def measured():
    R.append(heap())
    print("freed", R[0] - R[1], "hanport.config" in sys.modules)
MPY_STEPS = [loaded, forgotten, measured]
"""


def test_micropython_gives_the_same_list_for_hundreds_of_malformed_files(mpy, tmp_path, repo_root):
    rnd = random.Random(1987)
    n = 400
    files = [(str(p), "/lib/firmware/" + p.name) for p in (repo_root / "firmware").glob("*.py")]
    datas = []
    for i in range(n):
        data = random_file(rnd)
        datas.append(data)
        (tmp_path / ("%d.json" % i)).write_bytes(data)
        files.append((str(tmp_path / ("%d.json" % i)), "/cfg/%d.json" % i))
    (tmp_path / "check.py").write_text(MPY_CHECK)
    p = mpy(tmp_path / "check.py", args=[n], files=files, heap="2m", timeout=300)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, describe(p)
    lines = p.stdout.decode().splitlines()
    freed = lines.pop()
    assert freed.startswith("freed ") and freed.endswith(" False"), freed
    assert int(freed.split()[1]) > 8000, freed  # main() gives the checks' heap back
    assert len(lines) == n, describe(p)
    compared = 0
    for i, (data, line) in enumerate(zip(datas, lines)):
        name = "/cfg/%d.json" % i
        mp_ok, mp_errors = json.loads(line)
        if not mp_ok:
            assert len(mp_errors) == 1 and mp_errors[0].startswith(name + ": "), (i, mp_errors)
        for e in mp_errors:
            e.encode("ascii")
            assert "\n" not in e and MARK not in e and ": " in e, (i, e)
        cfg, errors = config.parse(data, name)
        if cfg is None or not mp_ok:
            continue  # the JSON parsers differ: MicroPython's takes {1: 2}, misses commas
        if re.search(rb"\\u[dD][89abAB]", data):
            continue  # CPython joins an escaped surrogate pair, MicroPython does not
        assert sorted(mp_errors) == sorted(errors), (i, data)
        compared += 1
    assert compared > n // 3, compared  # the rest are damaged files, checked above


def test_micropython_names_the_keys_its_lenient_json_lets_through(mpy, tmp_path, repo_root):
    cases = [b"{1:2}", b'{"safe_boot_pin": 0,4"ntp_host": ""}', b'{"wifi": {null: 1}}']
    files = [(str(p), "/lib/firmware/" + p.name) for p in (repo_root / "firmware").glob("*.py")]
    for i, data in enumerate(cases):
        (tmp_path / ("%d.json" % i)).write_bytes(data)
        files.append((str(tmp_path / ("%d.json" % i)), "/cfg/%d.json" % i))
    (tmp_path / "check.py").write_text(MPY_CHECK)
    p = mpy(tmp_path / "check.py", args=[len(cases)], files=files)
    assert p.returncode == 0, describe(p)
    got = [json.loads(line)[1] for line in p.stdout.decode().splitlines()[:-1]]
    assert got[0][0] == "1: not a key: keys are text in double quotes; is a quote, comma or colon missing near it?"
    assert got[1][0].startswith("4: not a key")
    assert got[2][0].startswith("wifi.None: not a key")
