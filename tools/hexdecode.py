"""Paste your frame dump: decode HAN frames and print one JSON line per frame.

    python tools/hexdecode.py [FILE | -]      hex frames, one per line
    python tools/hexdecode.py --raw FILE      a binary capture of the serial stream

Hex lines may have spaces between bytes and an optional "label<TAB>" prefix;
blank lines and lines starting with # are skipped. Each line is judged as one
whole frame. A raw capture is run through the streaming deframer, as the
dongle does; its error counters go to stderr at the end.

Uses only modules MicroPython has, so the same file runs on the device and
under the WebAssembly MicroPython in the tests.
"""
import sys

try:
    import hanport  # noqa: F401  (on the path on the device and in the MicroPython runner)
except ImportError:
    import os

    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(_root, "lib"))
    sys.path.insert(0, _root)

from hanport.hdlc import FLAG, Deframer
from hanport.decode import Decoder
from hanport.report import frame_json
from pc.capture import hex_lines

MAX_FRAME = 2047  # the largest length HDLC frame format type 3 can state


def decode_frame(raw):
    """(reading, error name) for bytes that should hold exactly one frame."""
    if not raw or raw[0] != FLAG:
        return None, "flag"
    got = []
    deframer = Deframer(lambda apdu, frame: got.append((bytes(apdu), len(frame))), MAX_FRAME, MAX_FRAME)
    deframer.feed(raw)
    deframer.end()
    if not got:
        return None, deframer.last_error or "short"
    apdu, frame_len = got[0]
    if frame_len != len(raw):
        return None, "length"
    decoder = Decoder()
    reading = decoder.decode(apdu)
    return reading, decoder.last_error


def decode_lines(stream):
    for label, raw in hex_lines(stream):
        if raw is None:
            print(frame_json(label, None, "hex"))
            continue
        reading, error = decode_frame(raw)
        print(frame_json(label, reading, error))


def raw_stream(f):
    decoder = Decoder()
    count = [0]

    def on_frame(apdu, frame):
        count[0] += 1
        reading = decoder.decode(apdu)
        print(frame_json("frame %d" % count[0], reading, decoder.last_error))

    deframer = Deframer(on_frame, MAX_FRAME, MAX_FRAME)
    chunk = bytearray(256)
    while True:
        n = f.readinto(chunk)
        if not n:
            break
        deframer.feed(chunk, n)
    deframer.end()
    counters = []
    for name in sorted(deframer.errors):
        counters.append("%s=%d" % (name, deframer.errors[name]))
    sys.stderr.write("frames=%d %s\n" % (deframer.frames, " ".join(counters)))


def _stdin():
    # The WebAssembly MicroPython runner hands standard input over as a file.
    if sys.implementation.name == "micropython":
        return open("/stdin")
    return sys.stdin


def main(args):
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] == "--raw":
        if len(args) != 2:
            print("usage: hexdecode.py --raw FILE")
            return 2
        with open(args[1], "rb") as f:
            raw_stream(f)
        return 0
    if not args or args[0] == "-":
        decode_lines(_stdin())
        return 0
    with open(args[0]) as f:
        decode_lines(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
