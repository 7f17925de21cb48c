"""Replay recorded meter traffic into hanport.energy.Energy, on CPython and MicroPython.

    python host_tests/energy_replay.py SCRIPT          (or under tools/mpy_run.mjs)

SCRIPT lines:
    F <ms> <hex>     a whole HDLC frame arriving at ticks <ms>: decoded as the dongle does
    P <ms>           print the <base>/energy payload at <ms>
    R                reboot: a new Energy restored from the last state saved
    S <steps,...>    start with these tariff steps (first line; default steps otherwise)

Output: "H <payload>" for each hour message, "E <payload>" after each List 3
that changed the state and for each P, "C <counters>" at the end. The state
is saved (dump) whenever `changed` is set, as the loop does. Uses only what
MicroPython has, so both runs can be compared byte for byte.
"""
import sys
from binascii import unhexlify

from hanport.energy import Energy
from hexdecode import decode_frame


def replay(lines, out):
    steps = (2, 5, 10, 15, 20, 25, 50, 75, 100)
    e = None
    saved = [None]

    def fresh():
        x = Energy(steps, log=lambda msg: out("L " + msg))
        if saved[0] is not None and not x.restore(saved[0]):
            out("L restore failed")
        return x

    for line in lines:
        line = line.strip()
        if not line:
            continue
        kind = line[0]
        if kind == "S":
            steps = tuple([int(s) for s in line[2:].split(",")])
            continue
        if e is None:
            e = fresh()
        if kind == "F":
            _, ms, hx = line.split(" ")
            ms = int(ms)
            reading, error = decode_frame(unhexlify(hx))
            if reading is None:
                out("X " + str(error))
                continue
            for p in e.on_reading(reading, ms):
                out("H " + p.decode())
            if e.changed:
                saved[0] = e.dump()
                e.changed = False
                out("E " + e.payload(ms).decode())
        elif kind == "P":
            p = e.payload(int(line[2:]))
            out("E " + ("None" if p is None else p.decode()))
        elif kind == "R":
            e = fresh()
    c = e.counters if e is not None else {}
    out("C " + " ".join(["%s=%d" % (k, c[k]) for k in sorted(c)]))


if __name__ == "__main__":
    name = sys.argv[1]
    with open(name) as f:
        replay(f.read().split("\n"), print)
