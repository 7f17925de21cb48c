"""The recorded frames (host_tests/data/frames.json, copied from ../shared/frames)."""
import json
import os
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMES = json.load(open(os.path.join(HERE, "data", "frames.json")))
BY_ID = {f["id"]: f for f in FRAMES}


def raw(frame_id):
    return bytes.fromhex(BY_ID[frame_id]["hex"])


def exact(value):
    """JSON numbers as exact decimals: 230 == 230.0, 0.892 without float noise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    if isinstance(value, str):
        return value
    return Decimal(repr(value)).normalize()


def expected_obis(frame):
    return {k: exact(v) for k, v in frame["expected"]["obis"].items()}


def reading_obis(reading):
    """A Reading's items in the same form, rendered through the exact decimal text."""
    from hanport.reading import item_json

    out = {}
    for item in reading.items:
        text = item_json(item)
        out[item[0]] = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    return {k: (v.normalize() if isinstance(v, Decimal) else v) for k, v in out.items()}
