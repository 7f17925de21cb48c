"""Configuration: JSON text merged over documented defaults, checked, redacted.

Portable (CPython and MicroPython). README.md ("Configuration") explains every key.
parse() takes the bytes of a config file and never raises: every problem, from
a byte that is not UTF-8 to a GPIO the ESP32 lacks, comes back as one line
"key: what is wrong and what is allowed". Messages never quote a password.
"""
import json

# The device reads at most this much of /config.json: a complete config is under
# 1 KB, and a bounded read keeps a wrong file (a firmware image, a log) off the heap.
MAX_BYTES = 8192

DEFAULTS = {
    "device": {"name": "hanport"},
    "wifi": {"ssid": "", "password": "", "hostname": "", "pm": "performance"},
    "mqtt": {"host": "", "port": 1883, "user": "", "password": "", "client_id": "",
             "keepalive": 60, "base_topic": "", "raw_frames": False},
    # Aidon: 8E1. Kaifa and Kamstrup are usually 8N1 ("N").
    "han": {"uart": 2, "rx": 16, "tx": 17, "baud": 2400, "parity": "E", "invert": False},
    "ha": {"discovery": True, "prefix": "homeassistant"},
    # Upper limits (kWh in the hour, i.e. average kW) of the capacity tariff's
    # steps; the last step is open-ended. A tuple: the defaults are never changed.
    "tariff": {"steps_kwh": (2, 5, 10, 15, 20, 25, 50, 75, 100)},
    "diag_interval_s": 60,
    "watchdog_s": 60,
    "safe_boot_pin": 0,
    "ntp_host": "",
    "language": "en",
}

SECRETS = ("password",)
PM_MODES = ("none", "performance", "powersave")
PARITIES = ("E", "N", "O")
LANGUAGES = ("en", "nb")
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
# MQTT 3.1.1 (1.5.3, 3.1.3) packs string lengths in 16 bits. umqtt wraps longer
# ones silently into a malformed packet.
MQTT_MAX = 65535
# MQTT 3.1.1 (3.1.3.1) lets a broker refuse client ids over 23 bytes. mosquitto
# refuses them only when built WITH_STRICT_PROTOCOL (src/handle_connect.c, 1.x),
# and 2.0.11 accepted 30 bytes over both 3.1 and 3.1.1 (tried here). 64 leaves
# room for a device name and stays far below MQTT's 65535.
CLIENT_ID_MAX = 64
# Every topic is <base_topic>/<suffix> or <ha.prefix>/<component>/<node>/...:
# short prefixes keep each publish's topic small in the dongle's RAM.
TOPIC_MAX = 128
STEPS_MAX = 20
STEP_KWH_MAX = 10000
LABEL_MAX = 32  # MicroPython's network.hostname() takes at most 32 bytes

# GPIOs of the classic ESP32 (datasheet): 0-19, 21-23, 25-27, 32-39. 6-11 are
# wired to the flash chip, 1 and 3 are the USB console's UART, 34-39 are input
# only and have no pull-up. GPIO 12 selects the flash voltage at reset: a UART
# line idles high, so a meter line on 12 would select 1.8 V and the board
# would not boot.
_RX_PINS = "0, 2, 4, 5, 13-19, 21-23, 25-27, 32-39"
_OUT_PINS = "0, 2, 4, 5, 12-19, 21-23, 25-27, 32, 33"


def parse(data, name="config"):
    """(cfg or None, errors) from the bytes of a config file; never raises.

    name prefixes the problems of the file as a whole (too big, not UTF-8,
    not JSON); the others start with the key they are about.
    """
    try:
        if len(data) > MAX_BYTES:
            return None, [name + ": larger than %d bytes: is it the right file?" % MAX_BYTES]
        if data[:3] == b"\xef\xbb\xbf":
            data = data[3:]  # Windows Notepad's byte order mark
        try:
            text = data.decode()
        except UnicodeError:  # CPython's UnicodeDecodeError is one
            text = None
        # All ASCII (as many characters as bytes): nothing to validate. Else check
        # here: MicroPython's decode() takes overlong forms and surrogates.
        at = -1 if text is not None and len(text) == len(data) else _utf8_error(data)
        if at >= 0:
            return None, [name + ": not UTF-8 text (line %d): save it as UTF-8"
                          % (data.count(b"\n", 0, at) + 1)]
        cfg = load(text if text is not None else data.decode())
    except ValueError as e:
        return None, [name + ": not valid JSON (" + str(e) + ")"]
    except Exception as e:  # MemoryError on the device: never a traceback instead of the list
        return None, [name + ": cannot be read (" + type(e).__name__ + ")"]
    return cfg, check(cfg)


def load(text):
    """Parse JSON text and merge it over DEFAULTS (one level of groups).

    Raises ValueError when the text is not a JSON object. Empty hostname,
    client_id and base_topic are derived from the device name.
    """
    if text[:1] == "\ufeff":
        text = text[1:]
    try:
        # JSON whitespace only; str.strip() would also take Unicode spaces on CPython.
        user = json.loads(text) if text.strip(" \t\r\n") else {}
    except ValueError as e:
        raise ValueError(str(e) or "syntax error")
    except RuntimeError:  # CPython's RecursionError is one
        raise ValueError("nested too deeply")
    except MemoryError:  # the device, with deep nesting or many values
        raise ValueError("too big for the free memory")
    except Exception as e:
        raise ValueError("syntax error (" + type(e).__name__ + ")")
    if not isinstance(user, dict):
        raise ValueError("the top level must be an object: { ... }")
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
    if isinstance(g, dict) and g.get(key) == "":  # a wrong type stays, for check()
        g[key] = value


def redacted(cfg):
    """A copy for printing: every non-empty password replaced by "***"."""
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict):  # groups only: a config is two levels deep
            g = {}
            for k, v in value.items():
                g[k] = "***" if k in SECRETS and v else v
            value = g
        elif key in SECRETS and value:
            value = "***"
        out[key] = value
    return out


def check(cfg):
    """Return a list of error strings, empty when cfg is usable."""
    errors = []

    def bad(key, why):
        if why:
            errors.append(key + ": " + why)

    for key in cfg:
        _unknown(bad, "", key, DEFAULTS)
    groups = {}
    for group, default in DEFAULTS.items():
        if not isinstance(default, dict):
            continue
        g = cfg.get(group)
        if isinstance(g, dict):
            for key in g:
                _unknown(bad, group + ".", key, default)
            groups[group] = g
        else:
            bad(group, "must be an object: { ... }")
            groups[group] = None  # its keys are not checked: one message is enough

    d = groups["device"]
    name_ok = True
    if d is not None:
        name = d.get("name")
        why = _label_problem(name)
        if why:
            name_ok = False
            bad("device.name", why + ": it becomes the Wi-Fi (DHCP) host name, "
                                     "which allows only these" + _suggest(name))

    def derived(v, value):
        # A key the user left empty took the bad device name: one message, not two.
        return not name_ok and (v == "" or v == value)

    w = groups["wifi"]
    if w is not None:
        ssid = w.get("ssid")
        if ssid == "":
            bad("wifi.ssid", "missing: the name of the Wi-Fi network")
        else:
            bad("wifi.ssid", _text_problem(ssid, 1, 32))
        bad("wifi.password", _wifi_password_problem(w.get("password")))
        hostname = w.get("hostname")
        if not derived(hostname, d and d.get("name")):
            why = _label_problem(hostname)
            if why:
                bad("wifi.hostname", why + " (a DHCP host name)")
        if w.get("pm") not in PM_MODES:
            bad("wifi.pm", "must be one of " + ", ".join(PM_MODES))

    m = groups["mqtt"]
    if m is not None:
        bad("mqtt.host", _host_problem(m.get("host"), False))
        if not _is_int(m.get("port"), 1, 65535):
            bad("mqtt.port", "must be an integer 1..65535 (1883 is usual)")
        bad("mqtt.user", _text_problem(m.get("user"), 0, MQTT_MAX, True))
        bad("mqtt.password", _text_problem(m.get("password"), 0, MQTT_MAX, True, True))
        if m.get("password") and not m.get("user"):
            bad("mqtt.password", "given without mqtt.user")
        cid = m.get("client_id")
        if not derived(cid, d and d.get("name")):
            bad("mqtt.client_id", _text_problem(cid, 1, CLIENT_ID_MAX, True))
        if not _is_int(m.get("keepalive"), MIN_KEEPALIVE, 65535):
            bad("mqtt.keepalive", "must be an integer %d..65535 seconds" % MIN_KEEPALIVE)
        topic = m.get("base_topic")
        name = d.get("name") if d is not None else None
        if not derived(topic, "han/" + name if isinstance(name, str) else None):
            bad("mqtt.base_topic", _topic_problem(topic))
        if not isinstance(m.get("raw_frames"), bool):
            bad("mqtt.raw_frames", "must be true or false")

    h = groups["han"]
    rx = tx = None
    if h is not None:
        if not _is_int(h.get("uart"), 1, 2):
            bad("han.uart", "must be 1 or 2 (UART0 is the USB console)")
        rx, tx = h.get("rx"), h.get("tx")
        why = _pin_problem(rx, False)
        if why:
            bad("han.rx", why)
            rx = None
        why = _pin_problem(tx, True) or (rx == tx and "must differ from han.rx")
        if why:
            bad("han.tx", why)
            tx = None
        if not _is_int(h.get("baud"), 300, 115200):
            bad("han.baud", "must be an integer 300..115200 (HAN meters use 2400)")
        if h.get("parity") not in PARITIES:
            bad("han.parity", "must be \"E\" (Aidon), \"N\" (Kaifa, Kamstrup) or \"O\"")
        if not isinstance(h.get("invert"), bool):
            bad("han.invert", "must be true or false")

    ha = groups["ha"]
    if ha is not None:
        if not isinstance(ha.get("discovery"), bool):
            bad("ha.discovery", "must be true or false")
        bad("ha.prefix", _topic_problem(ha.get("prefix")))

    t = groups["tariff"]
    if t is not None:
        bad("tariff.steps_kwh", _steps_problem(t.get("steps_kwh")))

    if not _is_int(cfg.get("diag_interval_s"), 10, 86400):
        bad("diag_interval_s", "must be an integer 10..86400 seconds")
    wd = cfg.get("watchdog_s")
    if not (_is_int(wd, 0, 0) or _is_int(wd, MIN_WATCHDOG_S, 3600)):
        bad("watchdog_s", "must be 0 (off) or an integer %d..3600 seconds" % MIN_WATCHDOG_S)
    sb = cfg.get("safe_boot_pin")
    if sb is not None:
        why = _pin_problem(sb, True)
        if why:
            bad("safe_boot_pin", why + " (or null: off)")
        elif sb == rx:
            bad("safe_boot_pin", "must differ from han.rx")
        elif sb == tx:
            bad("safe_boot_pin", "must differ from han.tx")
    ntp = cfg.get("ntp_host")
    if ntp != "":
        bad("ntp_host", _host_problem(ntp, True))
    if cfg.get("language") not in LANGUAGES:
        bad("language", "must be \"en\" (English) or \"nb\" (Norwegian)")
    return errors


def _unknown(bad, prefix, key, known):
    if not isinstance(key, str):
        # MicroPython's json takes {1: 2} and, from a missing quote or comma, {4: "x"}.
        bad(prefix + _show(key), "not a key: keys are text in double quotes; "
                                 "is a quote, comma or colon missing near it?")
    elif key not in known:
        bad(prefix + _show(key), "unknown key")


def _show(key):
    # A key as it may be printed: ASCII, no control characters, bounded, and no
    # ':' (the message would read as another key's).
    key = key if isinstance(key, str) else str(key)
    out = []
    for c in key[:40]:
        out.append(c if " " <= c <= "~" and c != ":" else "?")
    return "".join(out) + ("..." if len(key) > 40 else "")


def _is_int(v, lo, hi):
    # bool is an int subclass on CPython; true/false in JSON is never a number here.
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _utf8_error(data):
    """Offset of the first byte that is not well-formed UTF-8 (RFC 3629), or -1.

    MicroPython's bytes.decode() accepts overlong forms and surrogates, so the
    check is done here: the device and the PC then agree on every file.
    """
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            k, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= b <= 0xEF:
            k = 2
            lo = 0xA0 if b == 0xE0 else 0x80
            hi = 0x9F if b == 0xED else 0xBF  # ED A0..BF: surrogates
        elif 0xF0 <= b <= 0xF4:
            k = 3
            lo = 0x90 if b == 0xF0 else 0x80
            hi = 0x8F if b == 0xF4 else 0xBF  # above U+10FFFF
        else:
            return i
        if i + k >= n:
            return i  # cut short
        c = data[i + 1]
        if not lo <= c <= hi:
            return i
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= data[j] <= 0xBF:
                return i
        i += k + 1
    return -1


def _text_problem(v, lo, hi, mqtt=False, secret=False):
    """Why v is not a string of lo..hi UTF-8 bytes that the device can use.

    mqtt: the broker's rules for UTF-8 strings too (mosquitto's
    mosquitto_validate_utf8 refuses U+0001..U+001F, U+007F..U+009F and the
    noncharacters and closes the connection without a CONNACK: tried here).
    secret: a password, where control characters are the user's business.
    """
    if not isinstance(v, str):
        return "must be a string"
    n = 0
    for c in v:
        o = ord(c)
        if 0xD800 <= o <= 0xDFFF:
            return ("contains a \\ud800-\\udfff escape: write the character itself "
                    "(the device cannot read escaped surrogate pairs)")
        if not secret and (o < 0x20 or 0x7F <= o <= 0x9F):
            return "must not contain control characters (tab, newline, NUL, ...)"
        if mqtt and not secret and (0xFDD0 <= o <= 0xFDEF or (o & 0xFFFE) == 0xFFFE):
            return "must not contain Unicode noncharacters (the broker refuses them)"
        n += _utf8_size(o)
    if n < lo:
        return "must not be empty"
    if n > hi:
        return "longer than %d bytes in UTF-8" % hi
    return None


def _wifi_password_problem(pw):
    if pw == "":
        return None  # an open network
    why = _text_problem(pw, 0, 64)  # the driver stops at a NUL: no control characters
    if why and why[0] != "l":  # "longer than ...": the message below says more
        return why
    n = _utf8_len(pw)
    if 8 <= n <= 63:
        return None
    if n == 64 and _is_hex(pw):
        return None  # the 256-bit PSK itself
    return ("a WPA2 passphrase has 8..63 bytes in UTF-8 (a non-ASCII letter counts "
            "2 or more), or 64 hex digits; empty for an open network")


def _utf8_len(s):
    n = 0
    for c in s:
        n += _utf8_size(ord(c))
    return n


def _utf8_size(o):
    # Counted from code points: str.encode() raises on a lone surrogate on CPython.
    return 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4


def _is_hex(s):
    for c in s:
        if not ("0" <= c <= "9" or "a" <= c <= "f" or "A" <= c <= "F"):
            return False
    return True


def _is_label_char(c):
    return "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c == "-"


def _label_problem(v):
    """Why v cannot be a DHCP host name (RFC 952/1123 label, ASCII only)."""
    if not isinstance(v, str):
        return "must be a string"
    ok = 1 <= len(v) <= LABEL_MAX and v[0] != "-" and v[-1] != "-"
    for c in v:
        ok = ok and _is_label_char(c)
    if ok:
        return None
    return ("must be 1..%d characters a-z, A-Z, 0-9 or '-', not starting or "
            "ending with '-'" % LABEL_MAX)


def _suggest(v):
    # "Kjøkken 2" -> "Kjokken-2": the Norwegian letters as they are usually
    # written without them, anything else that cannot be in a host name as "-".
    if not isinstance(v, str):
        return ""
    out = []
    for c in v:
        if _is_label_char(c):
            out.append(c)
        else:
            i = "æøåÆØÅ".find(c)
            out.append(("ae", "o", "a", "Ae", "O", "A")[i] if i >= 0 else "-")
    s = "".join(out)
    while "--" in s:
        s = s.replace("--", "-")
    s = s.strip("-")[:LABEL_MAX].strip("-")
    if s and s != v and _label_problem(s) is None:
        return "; try \"" + s + "\""
    return ""


def _host_problem(v, may_be_empty):
    if not isinstance(v, str):
        return "must be a string"
    blank = True
    for c in v:
        if c != " " and c != "\t":
            blank = False
    if blank:
        if may_be_empty:
            return "must be a host name or an IPv4 address, or \"\" (none)"
        return "missing: the broker's host name or IPv4 address, e.g. \"192.168.1.10\""
    if "://" in v:
        return "the host only, without a scheme such as mqtt://, e.g. \"192.168.1.10\""
    head, sep, tail = v.rpartition(":")
    if sep:
        if head and tail and _is_digits(tail) and ":" not in head:
            return "the host only: put the port in mqtt.port"
        return "IPv6 addresses are not supported: give a host name or an IPv4 address"
    for c in v:
        if c == " ":
            return "must not contain spaces"
        if not (_is_label_char(c) or c == "." or c == "_"):
            return ("must be a host name or an IPv4 address: ASCII letters, digits, "
                    "'.', '-' or '_'")
    if len(v) > 253:
        return "longer than 253 characters"
    return None


def _is_digits(s):
    for c in s:
        if not "0" <= c <= "9":
            return False
    return True


def _topic_problem(t):
    if not isinstance(t, str) or not t:
        return "must be a non-empty string"
    why = _text_problem(t, 1, TOPIC_MAX, True)
    if why:
        return why
    if "+" in t or "#" in t:
        return "must not contain the wildcards + or #"
    if t.startswith("/") or t.endswith("/"):
        return "must not start or end with /"
    if "//" in t:
        return "must not contain an empty level (//)"
    if t.startswith("$"):
        return "must not start with $ (reserved for the broker)"
    return None


def _pin_problem(v, output):
    """Why v is not a usable GPIO of the classic ESP32 (output: drives or pulls up)."""
    allowed = _OUT_PINS if output else _RX_PINS
    if not _is_int(v, 0, 39) or v in (20, 24, 28, 29, 30, 31):
        return "must be a GPIO of the ESP32: " + allowed
    if 6 <= v <= 11:
        return "GPIO 6-11 are wired to the flash chip; use " + allowed
    if v == 1 or v == 3:
        return "GPIO 1 and 3 are the USB console's UART; use " + allowed
    if output and v >= 34:
        return "GPIO 34-39 are input only, without a pull-up; use " + allowed
    if not output and v == 12:
        return ("GPIO 12 sets the flash voltage at reset and the meter line would keep "
                "the board from booting; use " + allowed)
    return None


def _steps_problem(v):
    why = ("must be a list of 1..%d increasing whole numbers of kWh, each 1..%d, "
           "e.g. [2, 5, 10, 15, 20, 25, 50, 75, 100]" % (STEPS_MAX, STEP_KWH_MAX))
    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= STEPS_MAX:
        return why
    last = 0
    for s in v:
        if not _is_int(s, last + 1, STEP_KWH_MAX):
            return why
        last = s
    return None
