"""The deframer on a continuous stream: any chunking, shared flags, garbage."""
import random

import pytest

from corpus import FRAMES, raw
from hanport.decode import Decoder
from hanport.hdlc import ERRORS, Deframer
from hanport.report import frame_json

GOOD_IDS = [f["id"] for f in FRAMES if f["expected"]["ok"]]


def corpus_stream():
    """Every recorded frame back to back, then the first good one again.

    The repeat matters: the corpus ends with a segmented frame, and the good
    frame after it must not be swallowed as its continuation.
    """
    return b"".join(bytes.fromhex(f["hex"]) for f in FRAMES) + raw(GOOD_IDS[0])


def decode_stream(data, chunk_sizes=None, end=True):
    decoder = Decoder()
    out = []

    def sink(apdu, frame):
        out.append(frame_json(None, decoder.decode(apdu), decoder.last_error))

    deframer = Deframer(sink)
    if chunk_sizes is None:
        deframer.feed(data)
    else:
        i = 0
        for size in chunk_sizes:
            chunk = data[i:i + size]
            deframer.feed(chunk)
            i += size
            if i >= len(data):
                break
        deframer.feed(data[i:])
    if end:
        deframer.end()
    return out, deframer, decoder


def expected_lines():
    lines = []
    for frame_id in GOOD_IDS + [GOOD_IDS[0]]:
        out, _, _ = decode_stream(raw(frame_id))
        lines.extend(out)
    return lines


def test_corpus_as_one_stream_gives_every_good_frame():
    out, deframer, decoder = decode_stream(corpus_stream())
    good = [line for line in out if '"ok": true' in line]
    assert good == expected_lines()
    # The two TSS721 captures are one byte short: the byte their length field
    # promises is the next frame's opening flag, so their FCS fails.
    assert deframer.errors["fcs"] == 2
    assert deframer.errors["segmented"] == 1  # the get-response, cut off by a new APDU


@pytest.mark.parametrize("seed", range(8))
def test_random_chunk_sizes_give_identical_readings(seed):
    rng = random.Random(seed)
    data = corpus_stream()
    sizes = [rng.choice((1, 2, 3, 7, 64, 200, 513)) for _ in range(len(data))]
    assert decode_stream(data, sizes)[0] == decode_stream(data)[0]


def test_byte_by_byte_gives_identical_readings():
    data = corpus_stream()
    assert decode_stream(data, [1] * len(data))[0] == decode_stream(data)[0]


def test_a_flag_shared_by_two_frames():
    a, b = raw("aidon_6525_it_list1"), raw("aidon_6525_it_list2")
    out, deframer, _ = decode_stream(a + b[1:])
    assert len(out) == 2 and all('"ok": true' in line for line in out)
    assert deframer.errors["garbage"] == 0


def test_a_0x7e_inside_the_payload_does_not_split_the_frame():
    frame = raw("kaifa_list1_with_7e_byte")
    assert 0x7E in frame[1:-1]
    out, deframer, _ = decode_stream(raw("aidon_6525_it_list1") + frame + raw("aidon_6525_it_list1"))
    assert len(out) == 3 and '"1-0:1.7.0.255": 5502' in out[1]


def test_garbage_between_frames_is_counted_and_skipped():
    a = raw("aidon_6525_it_list1")
    out, deframer, _ = decode_stream(b"\x00\x11\x22" + a + b"\xa0\x01" + a)
    assert len(out) == 2
    assert deframer.errors["garbage"] == 5


def test_a_truncated_frame_does_not_cost_the_next_good_frame():
    list2 = raw("aidon_6525_it_list2")
    list1 = raw("aidon_6525_it_list1")
    out, deframer, _ = decode_stream(list2[:150] + list1 + list1)
    assert len(out) == 2
    assert deframer.errors["end_flag"] + deframer.errors["short"] >= 1


def test_a_truncated_frame_at_the_end_of_a_capture_still_releases_the_frames_behind_it():
    list3 = raw("aidon_6525_it_list3_a")
    list1 = raw("aidon_6525_it_list1")
    # The cut List 3 claims 377 bytes; only 100 + 44 arrive before the stream ends.
    out, deframer, _ = decode_stream(list3[:100] + list1)
    assert len(out) == 1 and deframer.errors["short"] >= 1


def test_a_bad_fcs_is_counted_and_the_stream_goes_on():
    frame = bytearray(raw("aidon_6525_it_list1"))
    frame[-2] ^= 0xFF
    out, deframer, _ = decode_stream(bytes(frame) + raw("aidon_6525_it_list1"))
    assert len(out) == 1
    assert deframer.errors["fcs"] == 1


def test_an_oversize_length_is_refused_without_waiting_for_it():
    # 0xA7FF claims 2047 bytes, above the default max_frame of 1024.
    out, deframer, _ = decode_stream(b"\x7e\xa7\xff" + raw("aidon_6525_it_list1"), end=False)
    assert len(out) == 1 and deframer.errors["oversize"] == 1


def test_buffers_are_fixed_in_size():
    deframer = Deframer(lambda apdu, frame: None)
    size = len(deframer.buf)
    deframer.feed(corpus_stream() * 3)
    deframer.feed(bytes(range(256)) * 40)
    assert len(deframer.buf) == size
    # The reassembly buffer, made by the first segmented frame, has its fixed size.
    assert deframer.apdu is None or len(deframer.apdu) == deframer.max_apdu
    assert deframer.n <= len(deframer.buf)


def test_the_reassembly_buffer_is_made_by_the_first_segmented_frame_and_kept():
    import framebuild as fb

    deframer = Deframer(lambda apdu, frame: None)
    plain = raw("aidon_6525_it_list1") + raw("aidon_6525_it_list2") + raw("aidon_6525_it_list3_a")
    deframer.feed(plain)
    assert deframer.frames == 3 and deframer.apdu is None  # no 2 KB held for nothing
    info = raw("aidon_6525_it_list3_a")[9:-3]
    segmented = fb.hdlc_frame(info[:200], segmented=True) + fb.hdlc_frame(info[200:])
    deframer.feed(segmented)
    kept = deframer.apdu
    assert kept is not None and len(kept) == deframer.max_apdu
    deframer.feed(segmented + plain)
    assert deframer.apdu is kept and deframer.frames == 10 and deframer.errors["segmented"] == 0


def test_error_counters_are_all_named():
    _, deframer, decoder = decode_stream(corpus_stream())
    assert set(deframer.errors) == set(ERRORS)
    assert decoder.errors["apdu"] == 1  # the general-block-transfer block


def test_a_consumer_that_raises_is_counted_and_the_stream_goes_on():
    calls = []

    def sink(apdu, frame):
        calls.append(1)
        raise RuntimeError("bug in consumer")

    deframer = Deframer(sink)
    deframer.feed(raw("aidon_6525_it_list1") * 3)
    assert len(calls) == 3 and deframer.errors["sink"] == 3
