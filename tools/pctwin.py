"""PC twin: the firmware's main loop (hanport.app.run) on CPython.

Reads a HAN port through a USB serial adapter, or replays a capture, and
publishes to an MQTT broker exactly as the dongle does.

    python tools/pctwin.py --broker HOST:PORT [--user U --password-file F]
        (--serial /dev/ttyUSB0 [--parity E|N|O] | --replay FILE [--realtime])
        [--base-topic T] [--name NAME] [--raw-frames] [--duration S]
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root
from pc import parts as pc_parts  # noqa: E402
from hanport.app import run  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the dongle's main loop on a PC.")
    p.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    p.add_argument("--user", default="", help="MQTT user name")
    p.add_argument("--password-file", help="file whose first line is the MQTT password")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--serial", help="serial port of the HAN adapter, e.g. /dev/ttyUSB0")
    src.add_argument("--replay", help="capture to replay: hex lines ([label<TAB>]hex) or raw binary")
    p.add_argument("--baud", type=int, default=2400)
    p.add_argument("--parity", default="E", choices=["E", "N", "O"],
                   help="E for Aidon (8E1, default); N for Kaifa and Kamstrup (8N1)")
    p.add_argument("--realtime", action="store_true",
                   help="replay with the meter's timing and 2400-baud pacing (default: as fast as possible)")
    p.add_argument("--name", default="hanport-pc", help="device name (default topic han/<name>)")
    p.add_argument("--base-topic", default="", help="MQTT base topic (default han/<name>)")
    p.add_argument("--raw-frames", action="store_true", help="also publish each frame as hex on <base>/raw")
    p.add_argument("--diag-interval", type=int, default=60, help="seconds between diag messages")
    p.add_argument("--keepalive", type=int, default=60)
    p.add_argument("--state-dir", help="directory that keeps the last List 3 across runs")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    return p.parse_args(argv)


def read_password(path):
    if not path:
        return ""
    with open(path) as f:
        return f.readline().rstrip("\r\n")


def main(argv=None):
    a = parse_args(argv)
    host, port = pc_parts.parse_hostport(a.broker)
    try:
        password = read_password(a.password_file)
    except OSError as e:
        sys.exit("pctwin: cannot read the password file: {}".format(e.strerror))
    cfg = pc_parts.make_config(host, port, name=a.name, user=a.user, password=password,
                               base_topic=a.base_topic, raw_frames=a.raw_frames,
                               diag_interval_s=a.diag_interval, keepalive=a.keepalive)
    if a.serial:
        try:
            source = pc_parts.SerialSource(a.serial, a.baud, a.parity)
        except Exception as e:  # serial.SerialException: port missing or busy
            sys.exit("pctwin: cannot open {}: {}".format(a.serial, e))
        fast = False
    else:
        try:
            frames = pc_parts.read_capture(a.replay)
        except OSError as e:
            sys.exit("pctwin: cannot read {}: {}".format(a.replay, e.strerror))
        fast = not a.realtime
        # A fast replay waits for the outbox to empty before reading on.
        source = pc_parts.ReplaySource(frames, realtime=a.realtime,
                                       ready=lambda: _flushed(held) if fast else True)

    held = []  # the App, once run() made it
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    t_end = time.monotonic() + a.duration if a.duration else None

    def stop(app):
        if not held:
            held.append(app)
        if stopping or (t_end and time.monotonic() >= t_end):
            return True
        # A fast replay ends once every frame is read and published.
        return fast and source.done() and app.client is not None and not len(app.outbox)

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
    return bool(held) and held[0].client is not None and len(held[0].outbox) < 4


if __name__ == "__main__":
    sys.exit(main())
