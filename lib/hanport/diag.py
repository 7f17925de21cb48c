"""What the dongle tells about itself on <base>/diag, and the words for it.

A closed HAN port looks exactly like a dead dongle (silence), so the meter
state is spelled out: the user reads "no data from the meter for N s" and
knows to ask the grid company, instead of reflashing the dongle.
"""
from hanport.reading import json_or_null, json_string

SILENT_S = 30  # Aidon pushes every 2.5 s, Kamstrup every 10 s: 30 s is 3+ missed pushes

# MQTT 3.1.1 CONNACK return codes 1-5. Names here are in one string, split
# when one is needed (rarely): a dict or a tuple of strings takes more heap.
_REFUSED = "unacceptable_protocol identifier_rejected server_unavailable bad_credentials not_authorised"

# errno values that are the same on the ESP32 (lwIP) and on Linux, and their
# names in the same order; 110 and 116 are ETIMEDOUT on Linux and on the ESP32.
_ERRNO = (32, 104, 110, 111, 116, 118)
_ERRNO_NAMES = "broken_pipe connection_reset timed_out connection_refused timed_out host_unreachable"

# getaddrinfo failures: the ESP32 raises OSError with lwIP's EAI_NONAME (200),
# EAI_SERVICE (201) or EAI_FAIL (202), or -2 when the answer is empty
# (ports/esp32/modsocket.c); the unix port and CPython's socket.gaierror carry
# glibc's EAI_NONAME (-2), EAI_AGAIN (-3), EAI_FAIL (-4) or EAI_NODATA (-5).
# None of these is an errno of lwIP or Linux.
_DNS = (-2, -3, -4, -5, 200, 201, 202)


def refused_text(code):
    if isinstance(code, int) and 1 <= code <= 5:
        return _REFUSED.split()[code - 1]
    return "refused_" + str(code)


def error_text(e):
    """Short readable name of an exception from the network or the client."""
    if type(e).__name__ == "gaierror":  # CPython's socket.gaierror (MicroPython has none)
        return "dns_failed"
    if isinstance(e, OSError):
        n = e.args[0] if e.args else None
        if isinstance(n, int):
            if n in _DNS:
                return "dns_failed"
            if n in _ERRNO:
                return _ERRNO_NAMES.split()[_ERRNO.index(n)]
            return "os_error_" + str(n)
        if n and "timed out" in str(n):
            return "timed_out"
        return "os_error"
    return "error_" + type(e).__name__


def meter_state(up_s, last_byte_s, last_frame_s, encrypted=0, lang="en"):
    """(state, seconds, message or None) from uptimes in seconds (None: never).

    waiting: nothing yet, shortly after boot; silent: no byte for SILENT_S;
    no_frames: bytes arrive but none form a valid frame; encrypted: the same,
    while frames with ciphered APDUs arrive (encrypted counts them, e.g.
    decoder.errors["encrypted"]); ok. lang: "en" or "nb" for the message.
    """
    if last_byte_s is None:
        quiet = up_s
        if quiet < SILENT_S:
            return "waiting", quiet, None
        return "silent", quiet, _msg(lang, 0, quiet)
    quiet = up_s - last_byte_s
    if quiet >= SILENT_S:
        return "silent", quiet, _msg(lang, 1, quiet)
    since = up_s if last_frame_s is None else up_s - last_frame_s
    if since >= SILENT_S:
        if encrypted:
            return "encrypted", quiet, _msg(lang, 3, since)
        return "no_frames", quiet, _msg(lang, 2, since)
    return "ok", quiet, None


def _msg(lang, n, s):
    # The words live in modules of their own, loaded only when a message is
    # shown (the meter is not ok): neither language takes heap while all is well.
    if lang == "nb":
        from hanport.diag_nb import meter_msg
    else:
        from hanport.diag_en import meter_msg
    return meter_msg(n, s)


def counters_json(d):
    """A dict of counters as a JSON object with sorted keys."""
    out = []
    for k in sorted(d):
        out.append("%s:%s" % (json_string(k), d[k]))
    return "{%s}" % ",".join(out)


# The <base>/diag object, keys in their fixed order (README.md "Diagnostics"):
# one constant filled in by one % (31 key constants and a list of 63 pieces
# took more heap to hold and to build; %d formats a count without a str of it).
_PAYLOAD = (
    '{"uptime_s":%d,"reset_cause":%s,"last_crash":%s,"free_heap":%s,'
    '"largest_free_block":%s,"link":%s,"rssi":%s,"mqtt":%s,"connects":%d,'
    '"connect_failures":%d,"disconnects":%d,"last_connect_error":%s,'
    '"meter":%s,"meter_silent_s":%d,"meter_msg":%s,"bytes":%d,"frames":%d,'
    '"readings":%d,"published":%d,"sent":%d,"queued":%d,"dropped":%d,'
    '"queue_torn":%d,"replaced":%d,"rx_overflows":%d,"irq_errors":%d,'
    '"ntp_failures":%d,"hdlc_errors":%s,"decode_errors":%s,"energy":%s,"errors":%s}'
)


def payload(app):
    """The <base>/diag JSON bytes (fixed key order; see README.md, "Diagnostics")."""
    state, quiet, msg = meter_state(app.up_s, app.last_byte_s, app.last_frame_s,
                                    app.decoder.errors.get("encrypted", 0),
                                    app.language)
    link = app.link
    system = app.system
    s = app.session
    box = app.outbox
    return (_PAYLOAD % (
        app.up_s, json_or_null(app.reset_cause), json_or_null(app.last_crash),
        _num(system.free_heap()), _num(system.largest_free_block()),
        json_or_null(link.state()), _num(link.rssi()), json_or_null(s.state),
        s.connects, s.connect_failures, s.disconnects, json_or_null(s.last_error),
        json_or_null(state), quiet, json_or_null(msg),
        app.bytes_in, app.deframer.frames, app.readings, app.published, app.sent,
        len(box), box.durable.dropped, box.durable.torn, box.replaced,
        # The device's UART source counts what its ring buffer and IRQ lost.
        getattr(app.source, "overflows", 0), getattr(app.source, "irq_errors", 0),
        getattr(app.clock, "ntp_failures", 0),
        counters_json(app.deframer.errors), counters_json(app.decoder.errors),
        counters_json(app.energy.counters), counters_json(app.errors),
    )).encode()


def _num(n):
    return "null" if n is None else str(n)
