"""Configuration: JSON text merged over documented defaults, checked, redacted.

Portable (CPython and MicroPython). README.md ("Configuration") explains every key.
Error messages name the key and the reason; they never quote a password.
"""
import json

DEFAULTS = {
    "device": {"name": "hanport"},
    "wifi": {"ssid": "", "password": "", "hostname": "", "pm": "performance"},
    "mqtt": {"host": "", "port": 1883, "user": "", "password": "", "client_id": "",
             "keepalive": 60, "base_topic": "", "raw_frames": False},
    # Aidon: 8E1. Kaifa and Kamstrup are usually 8N1 ("N").
    "han": {"uart": 2, "rx": 16, "tx": 17, "baud": 2400, "parity": "E", "invert": False},
    "diag_interval_s": 60,
    "watchdog_s": 60,
    "safe_boot_pin": 0,
    "ntp_host": "",
}

SECRETS = ("password",)
PM_MODES = ("none", "performance", "powersave")
PARITIES = ("E", "N", "O")
# ESP32 (classic): GPIO 0..39 exist, 6..11 are wired to the flash chip,
# 34..39 are input only.
FLASH_PINS = (6, 7, 8, 9, 10, 11)
# The loop may block up to 10 s (plus a DNS lookup in C): a shorter keepalive
# would fire then.
MIN_KEEPALIVE = 15
# The loop feeds the watchdog before and after each blocking MQTT call, so the
# longest stretch without a feed is one call: 10 s (the client's one deadline
# for TCP + CONNECT/CONNACK, or a publish, or a ping) plus, for connect, the
# DNS lookup, which no Python timeout bounds. lwIP's resolver (dns.c,
# dns_check_entry) asks each server 4 times (DNS_MAX_RETRIES), waiting 1, 1, 2
# and 3 ticks of DNS_TMR_INTERVAL (1 s): 7 s a server, and ESP-IDF tries up to
# 3 servers (DNS_MAX_SERVERS in components/lwip/port/include/lwipopts.h), so
# 21 s. 10 + 21 = 31 s; 45 leaves 14 s for the Python work, garbage
# collection and flash writes of the same turn.
MIN_WATCHDOG_S = 45


def load(text):
    """Parse JSON text and merge it over DEFAULTS (one level of groups).

    Raises ValueError when the text is not a JSON object. Empty hostname,
    client_id and base_topic are derived from the device name.
    """
    user = json.loads(text) if text and text.strip() else {}
    if not isinstance(user, dict):
        raise ValueError("config: the top level must be a JSON object")
    cfg = dict(user)  # unknown keys stay, for check() to report
    for key, default in DEFAULTS.items():
        given = user.get(key, default)
        if isinstance(default, dict) and isinstance(given, dict):
            merged = dict(default)  # a copy: DEFAULTS is never changed
            merged.update(given)
            given = merged
        cfg[key] = given
    name = cfg["device"].get("name") if isinstance(cfg["device"], dict) else None
    if isinstance(name, str):
        _derive(cfg, "wifi", "hostname", name)
        _derive(cfg, "mqtt", "client_id", name)
        _derive(cfg, "mqtt", "base_topic", "han/" + name)
    return cfg


def _derive(cfg, group, key, value):
    g = cfg[group]
    if isinstance(g, dict) and not g.get(key):
        g[key] = value


def redacted(cfg):
    """A copy for printing: every non-empty password replaced by "***"."""
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            value = redacted(value)
        elif key in SECRETS and value:
            value = "***"
        out[key] = value
    return out


def check(cfg):
    """Return a list of error strings, empty when cfg is usable."""
    errors = []

    def bad(key, why):
        errors.append(key + ": " + why)

    for key in cfg:
        if key not in DEFAULTS:
            bad(key, "unknown key")
    groups = {}
    for group, default in DEFAULTS.items():
        if not isinstance(default, dict):
            continue
        g = cfg.get(group)
        if not isinstance(g, dict):
            bad(group, "must be an object")
            g = dict(default)
        else:
            for key in g:
                if key not in default:
                    bad(group + "." + key, "unknown key")
        groups[group] = g

    d, w, m, h = groups["device"], groups["wifi"], groups["mqtt"], groups["han"]

    name = d.get("name")
    if not _is_label(name):
        bad("device.name", "must be 1..32 letters, digits or '-' (used in the hostname and topic)")

    ssid = w.get("ssid")
    if not isinstance(ssid, str) or not ssid:
        bad("wifi.ssid", "missing: the name of the Wi-Fi network")
    elif len(ssid.encode()) > 32:
        bad("wifi.ssid", "longer than 32 bytes")
    pw = w.get("password")
    if not isinstance(pw, str):
        bad("wifi.password", "must be a string")
    elif pw and not 8 <= len(pw) <= 63:
        bad("wifi.password", "a WPA2 passphrase has 8..63 characters (empty for an open network)")
    if not _is_label(w.get("hostname")):
        bad("wifi.hostname", "must be 1..32 letters, digits or '-'")
    if w.get("pm") not in PM_MODES:
        bad("wifi.pm", "must be one of " + ", ".join(PM_MODES))

    host = m.get("host")
    if not isinstance(host, str) or not host:
        bad("mqtt.host", "missing: the broker's host name or IP address")
    if not _is_int(m.get("port"), 1, 65535):
        bad("mqtt.port", "must be an integer 1..65535")
    for key in ("user", "password"):
        if not isinstance(m.get(key), str):
            bad("mqtt." + key, "must be a string")
    if m.get("password") and not m.get("user"):
        bad("mqtt.password", "given without mqtt.user")
    cid = m.get("client_id")
    if not isinstance(cid, str) or not cid or len(cid) > 64:
        bad("mqtt.client_id", "must be a string of 1..64 characters")
    if not _is_int(m.get("keepalive"), MIN_KEEPALIVE, 65535):
        bad("mqtt.keepalive", "must be an integer %d..65535 seconds" % MIN_KEEPALIVE)
    why = _topic_problem(m.get("base_topic"))
    if why:
        bad("mqtt.base_topic", why)
    if not isinstance(m.get("raw_frames"), bool):
        bad("mqtt.raw_frames", "must be true or false")

    if not _is_int(h.get("uart"), 1, 2):
        bad("han.uart", "must be 1 or 2 (UART0 is the USB console)")
    rx, tx = h.get("rx"), h.get("tx")
    if not _is_pin(rx, 39):
        bad("han.rx", "must be a GPIO number 0..39, not 6..11 (flash)")
    if not _is_pin(tx, 33):
        bad("han.tx", "must be an output-capable GPIO 0..33, not 6..11 (flash); it is never driven")
    elif rx == tx:
        bad("han.tx", "must differ from han.rx")
    if not _is_int(h.get("baud"), 300, 115200):
        bad("han.baud", "must be an integer 300..115200 (HAN meters use 2400)")
    if h.get("parity") not in PARITIES:
        bad("han.parity", "must be \"E\" (Aidon), \"N\" (Kaifa, Kamstrup) or \"O\"")
    if not isinstance(h.get("invert"), bool):
        bad("han.invert", "must be true or false")

    if not _is_int(cfg.get("diag_interval_s"), 10, 86400):
        bad("diag_interval_s", "must be an integer 10..86400 seconds")
    wd = cfg.get("watchdog_s")
    if not (_is_int(wd, 0, 0) or _is_int(wd, MIN_WATCHDOG_S, 3600)):
        bad("watchdog_s", "must be 0 (off) or an integer %d..3600 seconds" % MIN_WATCHDOG_S)
    sb = cfg.get("safe_boot_pin")
    if sb is not None and not _is_pin(sb, 39):
        bad("safe_boot_pin", "must be null (off) or a GPIO number 0..39, not 6..11 (flash)")
    if sb is not None and sb == rx:
        bad("safe_boot_pin", "must differ from han.rx")
    if not isinstance(cfg.get("ntp_host"), str):
        bad("ntp_host", "must be a string (empty: no time sync)")
    return errors


def _is_int(v, lo, hi):
    # bool is an int subclass on CPython; true/false in JSON is never a number here.
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_pin(v, top):
    return _is_int(v, 0, top) and v not in FLASH_PINS


def _is_label(v):
    if not isinstance(v, str) or not 1 <= len(v) <= 32:
        return False
    for c in v:
        if not (c.isalpha() or c.isdigit() or c == "-") or ord(c) > 127:
            return False
    return not v.startswith("-") and not v.endswith("-")


def _topic_problem(t):
    if not isinstance(t, str) or not t:
        return "must be a non-empty string"
    if "+" in t or "#" in t:
        return "must not contain the wildcards + or #"
    if t.startswith("/") or t.endswith("/"):
        return "must not start or end with /"
    if "//" in t:
        return "must not contain an empty level (//)"
    if t.startswith("$"):
        return "must not start with $ (reserved for the broker)"
    if "\x00" in t:
        return "must not contain a NUL character"
    return None
