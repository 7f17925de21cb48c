"""The loop's small pieces: backoff, outbox, field names, payloads, diag words."""
import json
import re
from decimal import Decimal

import pytest

from corpus import FRAMES
from hanport import fields
from hanport.backoff import Backoff
from hanport.decode import Decoder
from hanport.diag import SILENT_S, counters_json, error_text, meter_state
from hanport.hdlc import Deframer
from hanport.outbox import BILLING, LIVE, STATE, Outbox
from hanport.publish import base_topic, reading_payload, reading_topic


def diff(a, b):
    return a - b


# -- backoff ------------------------------------------------------------------

def test_backoff_doubles_with_jitter_between_half_and_full_delay():
    seen = []
    for rand in (lambda n: 0, lambda n: n - 1):
        b = Backoff(base_ms=1000, cap_ms=60000, rand=rand)
        delays = []
        for _ in range(10):
            b.failed(0)
            delays.append(b.delay_ms)
        seen.append(delays)
    low, high = seen
    assert low == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
    assert high == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]


def test_backoff_waits_its_delay_and_a_success_resets_it():
    b = Backoff(base_ms=1000, rand=lambda n: 0)
    assert b.ready(0, diff)
    b.failed(100)
    b.failed(100)  # second failure: 1000 ms
    assert not b.ready(1099, diff)
    assert b.wait_left(600, diff) == 500
    assert b.ready(1100, diff)
    b.succeeded()
    assert b.ready(1100, diff) and b.failures == 0


def test_backoff_default_jitter_stays_in_range():
    b = Backoff(base_ms=1000, cap_ms=8000)
    for i in range(50):
        b.failed(0)
        full = min(1000 << i, 8000)
        assert full // 2 <= b.delay_ms <= full


# -- outbox ---------------------------------------------------------------------

class ListQueue:
    """A durable queue's interface over a list (hanport.flashqueue has its own tests)."""

    def __init__(self):
        self.q = []
        self.dropped = 0

    def __len__(self):
        return len(self.q)

    def put(self, topic, payload):
        self.q.append((topic, payload))

    def peek(self):
        return self.q[0] if self.q else None

    def pop(self):
        self.q.pop(0)


def drain(o):
    out = []
    while True:
        m = o.next()
        if m is None:
            return out
        out.append(m)
        o.done(m)


def test_outbox_sends_billing_first_in_order_then_state_then_live():
    o = Outbox(ListQueue())
    o.put_live(b"l1", b"a")
    o.put_state(b"energy", b"e")
    o.put_billing(b"l3", b"h1")
    o.put_billing(b"hour", b"h2")
    assert drain(o) == [(b"l3", b"h1", BILLING), (b"hour", b"h2", BILLING),
                        (b"energy", b"e", STATE), (b"l1", b"a", LIVE)]
    assert len(o) == 0


def test_outbox_keeps_only_the_latest_live_and_state_message_per_topic():
    o = Outbox(ListQueue())
    for p in (b"a", b"b", b"c"):
        o.put_live(b"l1", p)
    o.put_live(b"l2", b"x")
    for p in (b"e1", b"e2"):
        o.put_state(b"energy", p)
    assert sorted(m[1] for m in drain(o)) == [b"c", b"e2", b"x"]
    assert o.replaced == 2  # the two List 1 that waited; a newer state is no loss


def test_outbox_never_lets_live_traffic_push_out_a_billing_message():
    o = Outbox(ListQueue())
    o.put_billing(b"l3", b"h1")
    for i in range(1000):
        o.put_live(b"l1", b"%d" % i)
    assert drain(o)[0] == (b"l3", b"h1", BILLING)


def test_outbox_done_keeps_a_newer_message_that_came_during_the_publish():
    o = Outbox(ListQueue())
    o.put_live(b"l1", b"old")
    m = o.next()
    o.put_live(b"l1", b"new")  # arrived while "old" was being published
    o.done(m)
    assert o.next() == (b"l1", b"new", LIVE)


# -- field names ----------------------------------------------------------------

def test_kamstrup_b1_and_aidon_b0_get_the_same_names():
    assert fields.name("1-1:1.7.0.255", "W") == fields.name("1-0:1.7.0.255", "W") == "power_import_w"
    assert fields.name("1-1:0.0.5.255", None) == fields.name("0-0:96.1.0.255", None) == "meter_id"
    assert fields.name("0-1:1.0.0.255", None) == fields.name("0-0:1.0.0.255", None) == "meter_clock"
    assert fields.name("1-1:1.8.0.255", "Wh") == "energy_import_wh"


def test_unknown_code_or_unexpected_unit_keeps_the_obis_code():
    assert fields.name("1-0:99.7.0.255", "W") == "1-0:99.7.0.255"
    assert fields.name("1-0:1.7.0.255", "kW") == "1-0:1.7.0.255"  # never mislabel a unit
    assert fields.name("1-2:1.7.0.255", "W") == "1-2:1.7.0.255"


def test_every_name_ends_with_its_unit():
    for name, unit in fields.listed():
        if unit:
            assert name.endswith("_" + unit.lower())


# -- payloads from every real frame ----------------------------------------------

def decode_frame(hexstr):
    out = []
    dec = Decoder()
    d = Deframer(lambda apdu, frame: out.append(dec.decode(apdu)))
    b = bytes.fromhex(hexstr)
    d.feed(b, len(b))
    d.end()
    return out[0] if out else None


def expected_fields(frame):
    exp = {}
    for obis, value in frame["expected"]["obis"].items():
        entry = fields.lookup(obis)
        key = entry[0] if entry else obis
        exp[key] = Decimal(repr(value)) if isinstance(value, (int, float)) else value
    return exp


GOOD = [f for f in FRAMES if f["expected"]["ok"]]


@pytest.mark.parametrize("frame", GOOD, ids=[f["id"] for f in GOOD])
def test_payload_holds_exactly_the_expected_values_under_readable_names(frame):
    r = decode_frame(frame["hex"])
    payload = reading_payload(r, 1700000000)
    assert isinstance(payload, bytes)
    doc = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
    assert doc.pop("meter") == frame["expected"]["manufacturer"]
    lst = doc.pop("list")
    assert (None if lst is None else int(lst)) == frame["expected"]["list"]
    assert doc.pop("ts") == 1700000000
    assert doc.pop("apdu_time", None) == frame["expected"]["apdu_time"]
    assert doc == expected_fields(frame)
    # numbers are plain decimals: no exponent, no float noise
    for number in re.findall(rb'":(-?[0-9][^,}"]*)[,}]', payload):
        assert re.fullmatch(rb"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?", number), number


def test_payload_keeps_key_order_of_the_meter_and_omits_unknown_time():
    r = decode_frame(next(f["hex"] for f in FRAMES if f["id"] == "aidon_6525_it_list3_a"))
    p = reading_payload(r, 0)
    assert p.startswith(b'{"meter":"aidon","list":3,"list_version":"AIDON_V0001","meter_id":')
    assert b'"ts"' not in p
    assert b'"meter_clock":"2019-06-12T18:00:00","energy_import_wh":21882340,' in p


def test_topics_and_default_base_from_the_device_name():
    cfg = {"device": {"name": "hanport-a1"}, "mqtt": {"base_topic": ""}}
    assert base_topic(cfg) == "han/hanport-a1"
    cfg["mqtt"]["base_topic"] = "home/meter/"
    assert base_topic(cfg) == "home/meter"

    class R:
        list = None
    assert reading_topic("b", R()) == "b/reading"
    R.list = 3
    assert reading_topic("b", R()) == "b/list3"


# -- diag words -------------------------------------------------------------------

def test_a_closed_han_port_is_named_not_just_silent():
    assert meter_state(5, None, None)[0] == "waiting"
    state, quiet, msg = meter_state(95, None, None)
    assert state == "silent" and quiet == 95
    assert msg.startswith("no data from the meter for 95 s") and "grid company" in msg


def test_silence_after_data_and_bytes_without_frames():
    assert meter_state(100, 99, 99)[0] == "ok"
    state, quiet, _ = meter_state(100, 100 - SILENT_S, 50)
    assert state == "silent" and quiet == SILENT_S
    state, _, msg = meter_state(100, 100, 10)
    assert state == "no_frames" and "parity" in msg


def test_error_names_and_sorted_counters():
    assert error_text(OSError(111)) == "connection_refused"
    assert error_text(OSError(116)) == "timed_out"
    assert error_text(TimeoutError("timed out")) == "timed_out"
    assert error_text(IndexError()) == "error_IndexError"
    assert counters_json({"b": 2, "a": 1}) == '{"a":1,"b":2}'
