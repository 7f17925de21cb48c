"""PC twin: the firmware's main loop (hanport.app.run) on CPython.

Reads a HAN port through a USB serial adapter, or replays a capture, and
publishes to an MQTT broker exactly as the dongle does.

    python tools/pctwin.py [--config config.json] [--broker HOST:PORT] [--user U --password-file F]
        (--serial /dev/ttyUSB0 [--parity E|N|O] | --replay FILE [--realtime [--first-hourly S]])
        [--base-topic T] [--name NAME] [--raw-frames] [--no-discovery] [--state-dir DIR] [--duration S]

--config reads the device's own config.json, checked by the firmware's code;
each option given overrides that one key. Without a device name from either,
the PC twin is "hanport-pc" (topics han/hanport-pc/...).

Like the dongle it publishes <base>/hour and <base>/energy (hours, today,
month, capacity tariff) and Home Assistant discovery (ha.discovery, on
unless the config or --no-discovery turns it off). --state-dir DIR is its
flash: the queue of List 3 and hour messages not yet acknowledged by the
broker, and the energy accounting, kept across runs (SIGTERM or Ctrl-C, then
start again with the same DIR). Without it both live in RAM only.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root
from pc import parts as pc_parts  # noqa: E402
from pc.parts import UserError  # noqa: E402


class Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line) instead of printing usage and exiting."""

    def error(self, message):
        raise UserError("%s (--help lists the options)" % pc_parts.shown(message))


def _positive(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("%r must be a positive number of seconds" % text)
    return v


def _not_negative(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("%r must be 0 or more seconds" % text)
    return v


def make_parser():
    p = Parser(prog="pctwin.py", description="Run the dongle's main loop on a PC.",
               epilog="Options override single keys of --config; without a name from either, the "
                      "device name is hanport-pc (topics han/hanport-pc/...).")
    p.add_argument("--config", help="the device's config.json: same keys, same checks (Wi-Fi keys unused)")
    p.add_argument("--broker", help="HOST:PORT of the MQTT broker (mqtt.host, mqtt.port)")
    p.add_argument("--user", help="MQTT user name (mqtt.user)")
    p.add_argument("--password-file", help="file whose first line is the MQTT password (mqtt.password)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--serial", help="serial port of the HAN adapter, e.g. /dev/ttyUSB0")
    src.add_argument("--replay", help="capture to replay: hex text (as hexdecode.py reads it) or raw binary")
    p.add_argument("--baud", type=int, help="serial speed (han.baud, default 2400)")
    p.add_argument("--parity", choices=["E", "N", "O"],
                   help="han.parity: E for Aidon (8E1, default); N for Kaifa and Kamstrup (8N1)")
    p.add_argument("--realtime", action="store_true",
                   help="replay with the meter's timing and 2400-baud pacing (default: as fast as "
                        "possible). Ends after --duration, else once every frame was sent (one pass)")
    p.add_argument("--first-hourly", type=_not_negative, metavar="S",
                   help="with --realtime: seconds until the first List 3 (default: the next XX:00:10, "
                        "as a real meter)")
    p.add_argument("--name", help="device name (device.name; default hanport-pc; topic han/<name>)")
    p.add_argument("--base-topic", help="MQTT base topic (mqtt.base_topic, default han/<name>)")
    p.add_argument("--raw-frames", action="store_true", default=None,
                   help="also publish each frame as hex on <base>/raw (mqtt.raw_frames)")
    p.add_argument("--diag-interval", type=int, help="seconds between diag messages (diag_interval_s)")
    p.add_argument("--keepalive", type=int, help="MQTT keepalive in seconds (mqtt.keepalive)")
    p.add_argument("--no-discovery", action="store_false", dest="discovery", default=None,
                   help="no Home Assistant discovery messages (ha.discovery false; default on)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the PC's flash: keeps the queue of List 3 and hour messages the broker has "
                        "not acknowledged yet, and the energy accounting (hours, today, month, capacity "
                        "peaks), across runs. Without it both are in RAM and lost when the twin stops")
    p.add_argument("--duration", type=_positive, help="stop after this many seconds")
    return p


def parse_args(argv=None):
    return make_parser().parse_args(argv)


def settings(a):
    """(cfg, host, port) from the parsed options: every check that needs no broker."""
    if a.first_hourly is not None and not a.realtime:
        raise UserError("--first-hourly needs --realtime")
    overrides = []
    if a.broker is not None:
        try:
            host, port = pc_parts.parse_hostport(a.broker)
        except ValueError as e:
            raise UserError("--broker: %s" % pc_parts.shown(e))
        overrides += [("mqtt", "host", host), ("mqtt", "port", port)]
    for group, key, value in (("mqtt", "user", a.user), ("device", "name", a.name),
                              ("mqtt", "base_topic", a.base_topic), ("mqtt", "raw_frames", a.raw_frames),
                              (None, "diag_interval_s", a.diag_interval), ("mqtt", "keepalive", a.keepalive),
                              ("han", "parity", a.parity), ("han", "baud", a.baud),
                              ("ha", "discovery", a.discovery)):
        if value is not None:
            overrides.append((group, key, value))
    if a.password_file is not None:
        overrides.append(("mqtt", "password", pc_parts.read_password(a.password_file)))
    if a.config is None and a.broker is None:
        raise UserError("no broker: give --broker HOST:PORT (or --config with mqtt.host)")
    cfg = pc_parts.load_config(a.config, overrides)
    pc_parts.check_state_dir(a.state_dir)
    return cfg, cfg["mqtt"]["host"], cfg["mqtt"]["port"]


def prepare(argv=None, open_serial=True):
    """(options, cfg, host, port, serial source or None, replay frames or None);
    UserError for every mistake in what was given. Nothing talks to a broker."""
    a = parse_args(argv)
    cfg, host, port = settings(a)
    source = frames = None
    if a.serial:
        if open_serial:
            try:
                source = pc_parts.SerialSource(a.serial, cfg["han"]["baud"], cfg["han"]["parity"])
            except Exception as e:  # serial.SerialException: port missing or busy
                raise UserError("cannot open {}: {}".format(pc_parts.shown(a.serial), pc_parts.shown(e)), 1)
    else:
        try:
            frames = pc_parts.read_capture(a.replay)
        except OSError as e:
            raise UserError("cannot read {}: {}".format(pc_parts.shown(a.replay), e.strerror or e), 1)
        except ValueError as e:
            raise UserError("{}: {}".format(pc_parts.shown(a.replay), pc_parts.shown(e)), 1)
    return a, cfg, host, port, source, frames


def main(argv=None):
    try:
        a, cfg, host, port, source, frames = prepare(argv)
    except UserError as e:
        sys.stderr.write("".join("pctwin: %s\n" % line for line in str(e).splitlines()))
        return e.status
    return run_twin(a, cfg, host, port, source, frames)


def run_twin(a, cfg, host, port, serial_source, frames):
    from hanport.app import run

    held = []  # the App, once run() made it
    if serial_source is not None:
        source = serial_source
        fast = False
    else:
        fast = not a.realtime
        first_ms = None if a.first_hourly is None else int(a.first_hourly * 1000)
        # A fast replay waits for the outbox to empty before reading on.
        source = pc_parts.ReplaySource(frames, realtime=a.realtime, first_hour_ms=first_ms,
                                       ready=lambda: _flushed(held) if fast else True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    t_end = time.monotonic() + a.duration if a.duration else None

    def stop(app):
        if not held:
            held.append(app)
        if stopping or (t_end and time.monotonic() >= t_end):
            return True
        # A fast replay ends once every frame is read and published; a realtime one
        # too (one pass), unless --duration says how long to run.
        return (frames is not None and (fast or not t_end) and source.done()
                and app.session.client is not None and not len(app.outbox))

    print("pctwin: {} -> mqtt {}:{} base topic {}".format(
        a.serial or a.replay, host, port, cfg["mqtt"]["base_topic"]))
    try:
        app = run(source, pc_parts.PcClock(), pc_parts.PcLink(), pc_parts.mqtt_factory(),
                  pc_parts.PcStorage(a.state_dir), pc_parts.PcWatchdog(), pc_parts.PcSystem(),
                  cfg, stop=stop)
    except KeyboardInterrupt:
        print("pctwin: stopped")
        return 0
    print("pctwin: {} bytes, {} frames, {} readings, {} messages published".format(
        app.bytes_in, app.deframer.frames, app.readings, app.published))
    return 0


def _flushed(held):
    return bool(held) and held[0].session.client is not None and not len(held[0].outbox)


if __name__ == "__main__":
    sys.exit(main())
