"""Paste your frame dump: decode HAN frames and print one JSON line per frame.

    python tools/hexdecode.py [FILE | -]      hex frames as pasted (standard input without FILE)
    python tools/hexdecode.py --raw FILE|-    a binary capture of the serial stream

Hex input: bytes with spaces, commas, colons or nothing between them, with or
without 0x (`0x7E, 0xA0, ...`), `hexdump -C` and `xxd` lines, an optional
"label<TAB>" before the bytes; blank lines and lines starting with # are
skipped. A frame may run over several lines, a line may hold several frames,
and a frame pasted without its 0x7E flags gets them back when its length field
fits. A failed frame says where ("detail") and, for a checksum, what was
expected and what was found.

A raw capture is run through the streaming deframer, as the dongle does; its
error counters go to stderr at the end.

Exit status: 0 when at least one frame decoded, 1 when none did, 2 for a usage
error or a file that cannot be read (one line on stderr).

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
from hanport.crc16 import crc16
from hanport.decode import Decoder
from hanport.report import frame_json
from pc.capture import shown, candidates, looks_binary, split_lines

MAX_FRAME = 2047  # the largest length HDLC frame format type 3 can state
MICROPYTHON = sys.implementation.name == "micropython"
USAGE = "usage: hexdecode.py [FILE | -] | --raw FILE|- | --help"


class UsageError(Exception):
    """One line for stderr, exit status 2."""


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


def _header_end(raw):
    """Index of the HCS in a frame (after flag, format, two addresses, control), or -1."""
    p = 3
    for _ in range(2):
        k = 0
        while True:
            if p >= len(raw) or k == 4:
                return -1
            k += 1
            last = raw[p] & 1
            p += 1
            if last:
                break
    p += 1
    return p if p + 2 <= len(raw) else -1


def _crc_bytes(v):
    return "%02x %02x" % (v & 0xFF, v >> 8)  # as sent: low byte first


def explain(c, error):
    """Where and why a candidate frame failed, for a person."""
    raw = c.frame
    if error == "hcs":
        p = _header_end(raw)
        if p > 0:
            return "%s: header check (HCS) is %s, expected %s" % (
                c.at(p), _crc_bytes(raw[p] | (raw[p + 1] << 8)), _crc_bytes(crc16(raw, 1, p)))
    if error == "fcs":
        e = len(raw) - 3
        return "%s: frame check (FCS) is %s, expected %s" % (
            c.at(e), _crc_bytes(raw[e] | (raw[e + 1] << 8)), _crc_bytes(crc16(raw, 1, e)))
    if error == "format":
        return "%s: not a type 3 frame header (too short, or an address longer than 4 bytes)" % c.at(1)
    if error == "segmented":
        return "%s: the frame says more segments follow; each frame is judged alone" % c.at(1)
    if error == "llc":
        p = _header_end(raw)
        return "%s: the information field does not start with the LLC header e6 e7 00" % c.at(p + 2)
    p = _header_end(raw) + 5  # the APDU's first byte
    if error == "encrypted":
        return "%s: the APDU is encrypted (tag 0x%02x): ask the grid company for the key or an unencrypted port" % (
            c.at(p), raw[p])
    if error == "apdu":
        return "%s: APDU tag 0x%02x, not a data-notification (0x0f)" % (c.at(p), raw[p])
    if error == "axdr":
        return "%s: the frame's checksums are right but its data does not parse (A-XDR)" % c.label
    if error == "unknown_list":
        return "%s: a list layout this decoder does not know" % c.label
    return "%s: %s" % (c.label, error)


def out(line):
    if MICROPYTHON:
        print(line)
    else:
        sys.stdout.buffer.write(line.encode() + b"\n")


def decode_lines(data):
    """Print a JSON line for each frame in hex text data (bytes); return how many decoded."""
    good = 0
    for c in candidates(split_lines(data)):
        if c.error is not None:
            out(frame_json(c.label, None, c.error, c.detail))
            continue
        reading, error = decode_frame(c.frame)
        if reading is None:
            out(frame_json(c.label, None, error, explain(c, error)))
        else:
            good += 1
            out(frame_json(c.label, reading, None))
    return good


def raw_stream(f):
    decoder = Decoder()
    count = [0]
    good = [0]

    def on_frame(apdu, frame):
        count[0] += 1
        reading = decoder.decode(apdu)
        if reading is not None:
            good[0] += 1
        out(frame_json("frame %d" % count[0], reading, decoder.last_error))

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
    return good[0]


def _stdin():
    # The WebAssembly MicroPython runner hands standard input over as a file.
    if MICROPYTHON:
        return open("/stdin", "rb")
    return sys.stdin.buffer


def _open(path):
    """The file opened for reading bytes, or UsageError saying why not."""
    import os

    try:
        mode = os.stat(path)[0]
    except OSError:
        raise UsageError("cannot read %s: no such file" % shown(path))
    except (TypeError, ValueError):  # e.g. a NUL character in the name
        raise UsageError("cannot read %s: not a valid file name" % shown(path))
    if mode & 0x4000:
        raise UsageError("cannot read %s: it is a directory" % shown(path))
    try:
        return open(path, "rb")
    except OSError as e:
        raise UsageError("cannot read %s: error %s" % (shown(path), e.args[0] if e.args else "?"))


def _waiting_on_a_terminal():
    if MICROPYTHON:
        return
    try:
        tty = sys.stdin.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        sys.stderr.write("hexdecode: reading hex frames from standard input: paste them, then "
                         "Ctrl-D (Ctrl-Z Enter on Windows). --help for more.\n")


def run(args):
    if "-h" in args or "--help" in args:
        print(__doc__)
        return 0
    raw = False
    paths = []
    for a in args:
        if a == "--raw":
            if raw:
                raise UsageError("--raw given twice")
            raw = True
        elif a.startswith("-") and a != "-":
            raise UsageError("unknown option %s (%s)" % (a, USAGE))
        else:
            paths.append(a)
    if len(paths) > 1:
        raise UsageError("one input at a time (%s)" % USAGE)
    if raw and not paths:
        raise UsageError("--raw needs a FILE, or - for standard input")
    path = paths[0] if paths else "-"
    if path == "-":
        if not raw:
            _waiting_on_a_terminal()
        f = _stdin()
        name = "standard input"
    else:
        f = _open(path)
        name = shown(path)
    try:
        if raw:
            good = raw_stream(f)
            if not good:
                sys.stderr.write("hexdecode: no frame decoded in %s\n" % name)
            return 0 if good else 1
        data = f.read()
    except OSError as e:
        raise UsageError("cannot read %s: error %s" % (name, e.args[0] if e.args else "?"))
    finally:
        if path != "-":
            f.close()
    if looks_binary(data):
        raise UsageError("%s looks like a binary capture, not hex text: use --raw %s" % (name, name))
    good = decode_lines(data)
    if not MICROPYTHON:
        sys.stdout.flush()
    if not good:
        sys.stderr.write("hexdecode: no frame decoded in %s\n" % name)
        return 1
    return 0


def main(args):
    try:
        return run(args)
    except UsageError as e:
        sys.stderr.write("hexdecode: %s\n" % e.args[0])
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("hexdecode: interrupted\n")
        return 130
    except OSError as e:  # standard output closed early (| head): nothing left to say
        if e.args and e.args[0] == 32:
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
