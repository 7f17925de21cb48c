"""Real frames through the decoder into hanport.discovery; prints every config message.

Runs the same under CPython (imported by test_discovery.py) and under the
WebAssembly MicroPython (run as a script by the `mpy` fixture), so the test can
compare the bytes. One line per message: case, time, topic, payload.

    node tools/mpy_run.mjs host_tests/discovery_run.py
"""
import json
import sys

from hanport.discovery import Discovery
from hexdecode import decode_frame

# Each case: frame ids in arrival order (from host_tests/data/frames.json), and
# whether <base>/energy and <base>/diag are published too.
CASES = (
    ("aidon_3ph", ("aidon_6525_it_list1", "aidon_6525_it_list2", "aidon_6525_it_list3_a"), True),
    ("aidon_1ph", ("aidon_6515_1ph_list2_hafslund",), False),
    ("kaifa", ("kaifa_ma304t4_list1_robin", "kaifa_ma304t4_list2_robin", "kaifa_ma304t4_list3_robin"), True),
    ("kamstrup", ("kamstrup_3ph_10s_xibriz", "kamstrup_3ph_hourly_xibriz"), True),
)
STEP_MS = 250  # how often the loop asks for the next message in this run


def frames_file():
    if sys.implementation.name == "micropython":
        return "/host_tests/data/frames.json"
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "frames.json")


def load_frames():
    with open(frames_file()) as f:
        frames = json.load(f)
    return dict((f["id"], f["hex"]) for f in frames)


def reading_of(hex_by_id, frame_id):
    reading, error = decode_frame(bytes.fromhex(hex_by_id[frame_id]))
    if error is not None:
        raise ValueError(frame_id + ": " + error)
    return reading


def diff(a, b):
    return a - b


def drain(d, now, out, label=""):
    """Ask every STEP_MS until nothing is left; (time, topic, payload) into out."""
    idle = 0
    while idle < 8:
        m = d.next(now, diff)
        if m is None:
            idle += 1
        else:
            idle = 0
            out.append((label, now, m[0], m[1]))
        now += STEP_MS
    return now


def run_case(hex_by_id, ids, energy, url=None):
    d = Discovery("homeassistant", "han/stue", "stue", "1.2.3", url=url)
    out = []
    now = 1000
    d.on_diag()
    for frame_id in ids:
        d.on_reading(reading_of(hex_by_id, frame_id))
        now = drain(d, now, out, frame_id)
    if energy:
        d.on_energy()
        now = drain(d, now, out, "energy")
    d.reannounce()
    drain(d, now, out, "again")
    return out


def main():
    hex_by_id = load_frames()
    for name, ids, energy in CASES:
        for label, t, topic, payload in run_case(hex_by_id, ids, energy):
            sys.stdout.write(name + " " + label + " " + str(t) + " " + topic.decode() + " "
                             + payload.decode() + "\n")


if __name__ == "__main__":
    main()
