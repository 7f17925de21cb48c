"""Decoder edges found with crafted frames (issue 8): one bad item voids that item,
not the frame; keys stay unique; text stays text; payloads stay bounded."""
import json
import struct
from decimal import Decimal

import pytest

import framebuild as fb
from hexdecode import decode_frame
from hanport import publish
from mpy import run_mpy


def decode(frame):
    reading, error = decode_frame(frame)
    assert error is None, error
    return reading


def item(c, d, e, value, scaler=None, unit=None, a=1, b=0):
    parts = [fb.obis(a, b, c, d, e), value]
    if scaler is not None:
        parts.append(fb.scaler_unit(scaler, unit))
    return fb.structure(*parts)


def kamstrup(*pairs):
    """Kamstrup's structure: version, null padding first, then OBIS/value pairs."""
    return (b"\x02" + bytes([1 + 2 + 2 * len(pairs)]) + fb.visible("Kamstrup_V0001") + fb.NULL + fb.NULL
            + b"".join(pairs))


def payload(reading):
    return json.loads(publish.reading_payload(reading, 0), parse_float=Decimal)


@pytest.mark.parametrize("encoded", [
    b"\x17\x7f\xc0\x00\x00",  # float32 NaN
    b"\x17\x7f\x80\x00\x00",  # float32 +infinity
    b"\x18\xff\xf0" + bytes(6),  # float64 -infinity
])
def test_a_non_finite_float_voids_only_its_item(encoded):
    body = fb.array(item(1, 7, 0, encoded, -1, 27), item(32, 7, 0, fb.u16(2301), -1, 35))
    reading = decode(fb.push_frame(body))
    assert reading.items[0] == ("1-0:1.7.0.255", None, -1, "W")
    p = payload(reading)
    assert p["power_import_w"] is None and p["voltage_l1_v"] == Decimal("230.1")


def test_b0_and_b1_codes_for_one_quantity_give_distinct_keys():
    body = fb.array(item(1, 7, 0, fb.u32(100), 0, 27), item(1, 7, 0, fb.u32(200), 0, 27, b=1),
                    item(1, 7, 0, fb.u32(300), 0, 27, b=1))
    text = publish.reading_payload(decode(fb.push_frame(body)), 0).decode()
    pairs = json.loads(text, object_pairs_hook=lambda kv: kv)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys))
    assert dict(pairs)["power_import_w"] == 100  # the first keeps the name
    assert dict(pairs)["1-1:1.7.0.255"] == 200 and dict(pairs)["1-1:1.7.0.255_2"] == 300


def test_a_utf8_visible_string_is_text_and_bad_utf8_or_controls_stay_hex():
    def vis(data):
        return b"\x0a" + fb.length(len(data)) + data

    body = fb.array(item(96, 1, 7, vis("Måler kjøkken".encode()), a=0),
                    item(96, 1, 8, b"\x0c" + fb.length(6) + "Ø1€".encode(), a=0),
                    item(96, 1, 9, vis(b"\xc3\x28"), a=0),
                    item(96, 1, 10, vis(b"a\x01b"), a=0))
    reading = decode(fb.push_frame(body))
    assert [i[1] for i in reading.items] == ["Måler kjøkken", "Ø1€", "c328", "610162"]
    assert reading.items[0][1] == "Måler kjøkken"
    assert "Måler kjøkken" in publish.reading_payload(reading, 0).decode()


def test_only_a_plausible_12_byte_octet_string_is_a_date_time():
    dt = fb.clock(2024, 3, 31, 2, 30, 0)
    not_dt = bytes([0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0])
    body = fb.array(item(96, 1, 7, fb.octets(dt), a=0), item(96, 1, 8, fb.octets(not_dt), a=0),
                    item(96, 1, 9, fb.octets(b"ABCDEFGHIJKL"), a=0))
    reading = decode(fb.push_frame(body))
    assert [i[1] for i in reading.items] == ["2024-03-31T02:30:00", not_dt.hex(), "ABCDEFGHIJKL"]


def test_a_date_time_with_unspecified_parts_keeps_its_item():
    def dt(year, month, day, hour, minute, second):
        return b"\x19" + struct.pack(">HBBBBBBBhB", year, month, day, 0xFF, hour, minute, second, 0xFF, -32768, 0)

    body = fb.array(item(96, 2, 1, dt(2024, 5, 17, 0xFF, 0xFF, 0xFF), a=0),
                    item(96, 2, 2, dt(2024, 5, 17, 13, 0xFF, 0xFF), a=0),
                    item(96, 2, 3, dt(0xFFFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), a=0),
                    item(96, 2, 4, dt(2024, 5, 17, 13, 45, 0xFF), a=0))
    reading = decode(fb.push_frame(body))
    assert [i[1] for i in reading.items] == ["2024-05-17", "2024-05-17T13:00:00", None, "2024-05-17T13:45:00"]
    assert payload(reading)["0-0:96.2.3.255"] is None


def test_a_kamstrup_frame_that_starts_with_null_padding_decodes():
    body = kamstrup(fb.obis(1, 1, 1, 7, 0) + fb.u32(1468), fb.obis(1, 1, 2, 7, 0) + fb.u32(0))
    reading = decode(fb.push_frame(body))
    assert reading.meter == "kamstrup"
    assert [i[:2] for i in reading.items[1:]] == [("1-1:1.7.0.255", 1468), ("1-1:2.7.0.255", 0)]


def test_a_payload_over_the_bound_is_counted_not_published():
    # About 1 kB of frame: 40 unlisted codes with 12-byte octet strings become hex text.
    elements = [item(96, 1, c, fb.octets(bytes(range(c, c + 12))), a=0) for c in range(40)]
    frame = fb.push_frame(fb.array(*elements))
    reading = decode(frame)
    with pytest.raises(publish.PayloadTooBig):
        publish.reading_payload(reading, 0, limit=1024)
    assert len(publish.reading_payload(reading, 0)) <= publish.MAX_PAYLOAD


def test_the_longest_real_list_fits_the_bound():
    from corpus import FRAMES

    for f in FRAMES:
        reading, _ = decode_frame(bytes.fromhex(f["hex"]))
        if reading is not None:
            assert len(publish.reading_payload(reading, 1700000000)) < publish.MAX_PAYLOAD // 2


def test_the_edges_give_the_same_bytes_on_micropython(tmp_path):
    frames = [
        fb.push_frame(fb.array(item(1, 7, 0, b"\x17\x7f\xc0\x00\x00", -1, 27), item(1, 7, 0, fb.u32(5), 0, 27, b=1))),
        fb.push_frame(fb.array(item(96, 1, 7, b"\x0a" + fb.length(6) + "blå".encode() + b"!!", a=0),
                               item(96, 1, 8, fb.octets(bytes(range(16, 28))), a=0),
                               item(96, 2, 1, b"\x19" + fb.clock(2024, 5, 17, 0xFF, 0xFF, 0xFF), a=0))),
        fb.push_frame(kamstrup(fb.obis(1, 1, 1, 7, 0) + fb.u32(9))),
    ]
    path = tmp_path / "f.hex"
    path.write_bytes(b"".join(f.hex().encode() + b"\n" for f in frames))
    script = (
        "import sys\n"
        "from pc.capture import read_hex\n"
        "from hanport.decode import Decoder\n"
        "from hanport.hdlc import Deframer\n"
        "from hanport.publish import reading_payload\n"
        "d = Decoder()\n"
        "def on(apdu, frame):\n"
        "    r = d.decode(apdu)\n"
        "    sys.stdout.write(reading_payload(r, 0).decode() + '\\n')\n"
        "df = Deframer(on)\n"
        "for label, f in read_hex(sys.argv[1]):\n"
        "    df.feed(f)\n"
    )
    m = run_mpy(script, args=["/f.hex"], files=[(str(path), "/f.hex")])
    assert m.returncode == 0, m.stderr
    from pc.capture import read_hex
    from hanport.decode import Decoder
    from hanport.hdlc import Deframer

    out = []
    d = Decoder()
    df = Deframer(lambda apdu, f: out.append(publish.reading_payload(d.decode(apdu), 0).decode() + "\n"))
    for _, f in read_hex(str(path)):
        df.feed(f)
    assert m.stdout.decode() == "".join(out)
    assert '"power_import_w":null,"1-1:1.7.0.255":5' in out[0]
    assert '"blå!!"' in out[1] and '"101112131415161718191a1b"' in out[1] and '"2024-05-17"' in out[1]
    assert out[2].startswith('{"meter":"kamstrup"')
