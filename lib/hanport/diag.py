"""What the dongle tells about itself on <base>/diag, and the words for it.

A closed HAN port looks exactly like a dead dongle (silence), so the meter
state is spelled out: the user reads "no data from the meter for N s" and
knows to ask the grid company, instead of reflashing the dongle.
"""
from hanport.reading import json_or_null, json_string

SILENT_S = 30  # Aidon pushes every 2.5 s, Kamstrup every 10 s: 30 s is 3+ missed pushes

# MQTT 3.1.1 CONNACK return codes.
REFUSED = {
    1: "unacceptable_protocol",
    2: "identifier_rejected",
    3: "server_unavailable",
    4: "bad_credentials",
    5: "not_authorised",
}

# errno values that are the same on the ESP32 (lwIP) and on Linux; 110 and
# 116 are ETIMEDOUT on Linux and on the ESP32.
_ERRNO = {
    32: "broken_pipe",
    104: "connection_reset",
    110: "timed_out",
    111: "connection_refused",
    116: "timed_out",
    118: "host_unreachable",
}


# getaddrinfo failures: the ESP32 raises OSError with lwIP's EAI_NONAME (200),
# EAI_SERVICE (201) or EAI_FAIL (202), or -2 when the answer is empty
# (ports/esp32/modsocket.c); the unix port and CPython's socket.gaierror carry
# glibc's EAI_NONAME (-2), EAI_AGAIN (-3), EAI_FAIL (-4) or EAI_NODATA (-5).
# None of these is an errno of lwIP or Linux.
_DNS = (-2, -3, -4, -5, 200, 201, 202)


def refused_text(code):
    return REFUSED.get(code, "refused_" + str(code))


def error_text(e):
    """Short readable name of an exception from the network or the client."""
    if type(e).__name__ == "gaierror":  # CPython's socket.gaierror (MicroPython has none)
        return "dns_failed"
    if isinstance(e, OSError):
        n = e.args[0] if e.args else None
        if isinstance(n, int):
            if n in _DNS:
                return "dns_failed"
            return _ERRNO.get(n, "os_error_" + str(n))
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
    # The Norwegian words live in their own module, loaded only when chosen:
    # the unused language's strings never take heap on the device.
    if lang == "nb":
        from hanport.diag_nb import meter_msg
        return meter_msg(n, s)
    if n == 0:
        return ("no data from the meter for %d s - the HAN port may not be opened by the "
                "grid company yet: ask them (nettselskapet) to open it" % s)
    if n == 1:
        return ("no data from the meter for %d s - check the cable; some meters stop "
                "pushing until the grid company resets them" % s)
    if n == 2:
        return ("bytes from the meter but no valid frame for %d s - check the parity "
                "(Aidon 8E1, Kaifa and Kamstrup 8N1) and the M-Bus adapter" % s)
    return ("the meter encrypts its data: ask the grid company (nettselskapet) for "
            "the keys; this dongle cannot decrypt yet")


def counters_json(d):
    """A dict of counters as a JSON object with sorted keys."""
    out = []
    for k in sorted(d):
        out.append(json_string(k) + ":" + str(d[k]))
    return "{" + ",".join(out) + "}"


def payload(app):
    """The <base>/diag JSON bytes (fixed key order; see README.md, "Diagnostics")."""
    state, quiet, msg = meter_state(app.up_s, app.last_byte_s, app.last_frame_s,
                                    app.decoder.errors.get("encrypted", 0),
                                    app.language)
    link = app.link
    system = app.system
    s = app.session
    box = app.outbox
    out = [
        '{"uptime_s":', str(app.up_s),
        ',"reset_cause":', json_or_null(app.reset_cause),
        ',"last_crash":', json_or_null(app.last_crash),
        ',"free_heap":', _num(system.free_heap()),
        ',"largest_free_block":', _num(system.largest_free_block()),
        ',"link":', json_or_null(link.state()),
        ',"rssi":', _num(link.rssi()),
        ',"mqtt":', json_or_null(s.state),
        ',"connects":', str(s.connects),
        ',"connect_failures":', str(s.connect_failures),
        ',"disconnects":', str(s.disconnects),
        ',"last_connect_error":', json_or_null(s.last_error),
        ',"meter":', json_or_null(state),
        ',"meter_silent_s":', str(quiet),
        ',"meter_msg":', json_or_null(msg),
        ',"bytes":', str(app.bytes_in),
        ',"frames":', str(app.deframer.frames),
        ',"readings":', str(app.readings),
        ',"published":', str(app.published),
        ',"sent":', str(app.sent),
        ',"queued":', str(len(box)),
        ',"dropped":', str(box.durable.dropped),
        ',"queue_torn":', str(box.durable.torn),
        ',"replaced":', str(box.replaced),
        # The device's UART source counts what its ring buffer and IRQ lost.
        ',"rx_overflows":', str(getattr(app.source, "overflows", 0)),
        ',"irq_errors":', str(getattr(app.source, "irq_errors", 0)),
        ',"ntp_failures":', str(getattr(app.clock, "ntp_failures", 0)),
        ',"hdlc_errors":', counters_json(app.deframer.errors),
        ',"decode_errors":', counters_json(app.decoder.errors),
        ',"energy":', counters_json(app.energy.counters),
        ',"errors":', counters_json(app.errors),
        "}",
    ]
    return "".join(out).encode()


def _num(n):
    return "null" if n is None else str(n)
