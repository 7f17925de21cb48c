"""Configuration: defaults, one named error per bad key, passwords never shown."""
import json

import pytest

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
    assert errors and errors[0].startswith(key + ": "), errors
    if key not in ("device.name", "wifi"):  # those also spoil what derives from them
        assert len(errors) == 1, errors


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
