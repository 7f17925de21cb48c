"""Hex capture files: one HDLC frame per line, as the tools and tests share them.

A line holds `hex` or `label<TAB>hex`, spaces between bytes allowed; blank
lines and lines starting with # are skipped. Portable: the tools run it under
MicroPython too.
"""
from binascii import unhexlify


def hex_lines(lines):
    """(label, frame) for each frame line; frame is None when the line is not hex.

    A line without a label is called "line N" after its line number.
    """
    number = 0
    for line in lines:
        number += 1
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label = "line %d" % number
        tab = line.find("\t")
        if tab >= 0:
            label = line[:tab].strip()
            line = line[tab + 1:]
        try:
            frame = unhexlify(line.replace(" ", ""))
        except ValueError:
            frame = None
        yield label, frame


def read_hex(path):
    """[(label, frame)] of a hex capture file; ValueError names a line that is not hex."""
    frames = []
    with open(path) as f:
        for label, frame in hex_lines(f):
            if frame is None:
                raise ValueError(label + ": not a hex frame")
            frames.append((label, frame))
    return frames
