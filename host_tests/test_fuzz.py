"""Property-based fuzzing: random bytes and mutated real frames.

Whatever arrives, the deframer and decoder only count named errors: no
exception escapes, nothing hangs, the buffers keep their size, and a good
frame after the damage is still delivered.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import FRAMES
from hanport.decode import ERRORS as DECODE_ERRORS
from hanport.decode import Decoder, decode
from hanport.axdr import DecodeError
from hanport.hdlc import ERRORS as FRAME_ERRORS
from hanport.hdlc import Deframer

GOOD = [bytes.fromhex(f["hex"]) for f in FRAMES if f["expected"]["ok"]]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(data, chunk):
    decoder = Decoder()
    readings = []

    def sink(apdu, frame):
        reading = decoder.decode(apdu)
        if reading is not None:
            readings.append(reading)

    deframer = Deframer(sink, max_frame=1024, max_apdu=2048)
    size = len(deframer.buf)
    for i in range(0, len(data), chunk):
        deframer.feed(data[i:i + chunk])
        assert deframer.n <= len(deframer.buf)
    deframer.end()
    assert len(deframer.buf) == size
    # The reassembly buffer, made by the first segmented frame, has its fixed size.
    assert deframer.apdu is None or len(deframer.apdu) == deframer.max_apdu
    assert set(deframer.errors) == set(FRAME_ERRORS) and deframer.errors["sink"] == 0
    assert set(decoder.errors) == set(DECODE_ERRORS)
    return readings, deframer, decoder


@SETTINGS
@given(st.binary(max_size=3000), st.integers(1, 600))
def test_random_bytes_only_count_named_errors(data, chunk):
    run(data, chunk)


@SETTINGS
@given(st.binary(max_size=600))
def test_the_decoder_on_random_apdus_returns_a_reading_or_a_named_error(apdu):
    try:
        decode(apdu)
    except DecodeError as e:
        assert e.args[0] in DECODE_ERRORS


def mutate(draw, frame):
    frame = bytearray(frame)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "zero"]))
    i = draw(st.integers(0, len(frame) - 1))
    if kind == "flip":
        frame[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del frame[i:]
    elif kind == "insert":
        frame[i:i] = draw(st.binary(min_size=1, max_size=20))
    elif kind == "delete":
        del frame[i:i + draw(st.integers(1, 20))]
    else:  # an M-Bus adapter dropping to zero for a few bytes
        for j in range(i, min(len(frame), i + draw(st.integers(1, 8)))):
            frame[j] = 0
    return bytes(frame)


@st.composite
def damaged_then_good(draw):
    damaged = mutate(draw, draw(st.sampled_from(GOOD)))
    good = draw(st.sampled_from(GOOD))
    return damaged, good


@SETTINGS
@given(damaged_then_good(), st.integers(1, 500), st.booleans())
def test_a_damaged_frame_never_costs_the_good_frame_after_it(case, chunk, between_meter_frames):
    damaged, good = case
    data = damaged + good
    readings, deframer, _ = run(data, chunk)
    # The good frame always comes through; the damaged one may still decode
    # (e.g. a flip in a spare bit of a text), but only if its checksums held.
    assert 1 <= len(readings) <= 2
    good_readings, _, _ = run(good, len(good))
    assert [r.items for r in readings[-1:]] == [good_readings[0].items]


@SETTINGS
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=6), st.binary(max_size=40), st.integers(1, 300))
def test_garbage_before_a_burst_of_good_frames_loses_none_of_them(frames, garbage, chunk):
    # Garbage could by chance open a frame header; flags keep it apart.
    data = garbage + b"\x7e" + b"".join(frames)
    readings, _, _ = run(data, chunk)
    assert len(readings) == len(frames)
