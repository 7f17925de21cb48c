"""Be the meter: write recorded frames to a serial port with the meter's timing.

For testing a dongle on the bench without a meter: connect a USB serial
adapter's TX to the dongle's HAN RX (at logic level, or through an M-Bus
master), then

    python tools/simulate_meter.py --port /dev/ttyUSB1 [--capture FILE] [--parity E]

Aidon timing: List 1 every 2.5 s, List 2 every 10 s, List 3 at XX:00:10
(or --first-hourly S seconds after the start). 2400 baud 8E1 by default.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repo root: pc/ and lib/ via pc.parts
from pc import parts as pc_parts  # noqa: E402

DEFAULT_CAPTURE = os.path.join(HERE, "data", "aidon_demo.hex")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Write recorded HAN frames to a serial port like a meter.")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1 or COM4")
    p.add_argument("--capture", default=DEFAULT_CAPTURE, help="frames: hex lines or a raw binary capture")
    p.add_argument("--baud", type=int, default=pc_parts.BAUD)
    p.add_argument("--parity", default="E", choices=["E", "N", "O"],
                   help="E: Aidon 8E1 (default); N: Kaifa and Kamstrup 8N1")
    p.add_argument("--first-hourly", type=float,
                   help="seconds until the first List 3 (default: the next XX:00:10)")
    p.add_argument("--count", type=int, help="stop after this many frames")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        import serial
    except ImportError:
        sys.exit("simulate_meter: pyserial is missing: run `make setup` (pip install pyserial)")
    try:
        frames = pc_parts.read_capture(a.capture)
    except OSError as e:
        sys.exit("simulate_meter: cannot read {}: {}".format(a.capture, e.strerror))
    try:
        port = serial.Serial(a.port, a.baud, bytesize=8, parity=a.parity, stopbits=1, timeout=1)
    except (serial.SerialException, OSError, ValueError) as e:
        sys.exit("simulate_meter: cannot open serial port {}: {}".format(
            a.port, getattr(e, "strerror", None) or e))
    first = None if a.first_hourly is None else int(a.first_hourly * 1000)
    if first is None:
        first = pc_parts.ms_to_next_hourly()
    program = pc_parts.meter_program(frames, first)
    t0 = time.monotonic()
    sent = 0
    print("simulate_meter: {} frames from {} to {} at {} 8{}1; Ctrl-C to stop".format(
        len(frames), a.capture, a.port, a.baud, a.parity))
    try:
        for t_ms, label, frame in program:
            if a.count is not None and sent >= a.count:
                break
            delay = t0 + t_ms / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            port.write(frame)
            port.flush()  # the UART paces the bytes at the baud rate
            sent += 1
            if not a.quiet:
                print("{:8.1f} s  {:4d} bytes  {}".format(t_ms / 1000, len(frame), label))
    except KeyboardInterrupt:
        pass
    except serial.SerialException as e:
        sys.exit("simulate_meter: serial port {} failed: {}".format(a.port, e))
    finally:
        port.close()
    print("simulate_meter: {} frames sent".format(sent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
