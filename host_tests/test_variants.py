"""Variants the notes describe that the recorded frames do not all show.

Frames are built from ../shared/notes/han-protocol.md with host_tests/framebuild.py.
"""
import struct

import pytest

import framebuild as fb
from corpus import raw, reading_obis
from decimal import Decimal, localcontext
from hexdecode import decode_frame
from hanport.decode import Decoder
from hanport.hdlc import Deframer


def decode(frame):
    reading, error = decode_frame(frame)
    assert error is None, error
    return reading


def D(text):
    return Decimal(text).normalize()


KAIFA_HEAD = (fb.octets(b"KFM_001"), fb.octets(b"6970631400000233"), fb.octets(b"MA105H2E"))


def test_kaifa_single_phase_list2_has_nine_values():
    body = fb.structure(*KAIFA_HEAD, fb.u32(1520), fb.u32(0), fb.u32(210), fb.u32(0), fb.i32(6700), fb.u32(2311))
    reading = decode(fb.push_frame(body, fb.octets(fb.clock(2024, 1, 2, 3, 4, 5))))
    assert (reading.meter, reading.list, reading.apdu_time) == ("kaifa", 2, "2024-01-02T03:04:05")
    obis = reading_obis(reading)
    assert obis["1-0:31.7.0.255"] == D("6.7") and obis["1-0:32.7.0.255"] == D("231.1")
    assert "1-0:51.7.0.255" not in obis and len(obis) == 9


def test_kaifa_single_phase_list3_adds_clock_and_registers():
    body = fb.structure(
        *KAIFA_HEAD, fb.u32(1520), fb.u32(0), fb.u32(210), fb.u32(0), fb.i32(6700), fb.u32(2311),
        fb.octets(fb.clock(2024, 1, 2, 4, 0, 0)), fb.u32(123456789), fb.u32(0), fb.u32(4567), fb.u32(89),
    )
    reading = decode(fb.push_frame(body, fb.octets(fb.clock(2024, 1, 2, 4, 0, 10))))
    obis = reading_obis(reading)
    assert reading.list == 3 and obis["0-0:1.0.0.255"] == "2024-01-02T04:00:00"
    assert obis["1-0:1.8.0.255"] == D("123456789")  # 9 digits: a 32-bit float would round it


def test_kaifa_negative_current_on_an_exporting_installation():
    body = fb.structure(*KAIFA_HEAD, fb.u32(0), fb.u32(3100), fb.u32(0), fb.u32(120), fb.i32(-13450), fb.u32(2355))
    obis = reading_obis(decode(fb.push_frame(body)))
    assert obis["1-0:31.7.0.255"] == D("-13.45") and obis["1-0:2.7.0.255"] == D("3100")


def aidon_item(c, d, e, value, scaler, unit, b=0):
    return fb.structure(fb.obis(1, b, c, d, e), value, fb.scaler_unit(scaler, unit))


def test_aidon_negative_currents_on_an_exporting_installation():
    body = fb.array(
        fb.structure(fb.obis(1, 1, 0, 2, 129), fb.visible("AIDON_V0001")),
        fb.structure(fb.obis(0, 0, 96, 1, 0), fb.visible("7359992890941742")),
        fb.structure(fb.obis(0, 0, 96, 1, 7), fb.visible("6534")),
        aidon_item(1, 7, 0, fb.u32(0), 0, 27),
        aidon_item(2, 7, 0, fb.u32(4980), 0, 27),
        aidon_item(31, 7, 0, fb.i16(-72), -1, 33),
        aidon_item(51, 7, 0, fb.i16(-71), -1, 33),
        aidon_item(71, 7, 0, fb.i16(-73), -1, 33),
    )
    reading = decode(fb.push_frame(body))
    obis = reading_obis(reading)
    assert (reading.meter, reading.list) == ("aidon", 2)
    assert [obis["1-0:%d.7.0.255" % c] for c in (31, 51, 71)] == [D("-7.2"), D("-7.1"), D("-7.3")]


def kamstrup_body(l2, l3, hourly=False, null_obis=False):
    def pair(c, d, e, value, b=1):
        return fb.obis(1, b, c, d, e) + value

    def phase(c, value, present):
        if present:
            return pair(c, 7, 0, value)
        return (fb.NULL + fb.NULL) if null_obis else pair(c, 7, 0, fb.NULL)

    elements = [
        fb.visible("Kamstrup_V0001"),
        pair(0, 0, 5, fb.octets(b"5706567274389702")),
        pair(96, 1, 1, fb.octets(b"6861111BN242101040")),
        pair(1, 7, 0, fb.u32(1468)), pair(2, 7, 0, fb.u32(0)), pair(3, 7, 0, fb.u32(0)), pair(4, 7, 0, fb.u32(462)),
        phase(31, fb.u32(564), True), phase(51, fb.u32(202), l2), phase(71, fb.u32(511), l3),
        phase(32, fb.u16(232), True), phase(52, fb.u16(228), l2), phase(72, fb.u16(233), l3),
    ]
    count = 25
    if hourly:
        elements += [
            fb.obis(0, 1, 1, 0, 0) + fb.octets(fb.clock(2024, 3, 1, 13, 0, 5)),
            pair(1, 8, 0, fb.u32(4272440)), pair(2, 8, 0, fb.u32(0)), pair(3, 8, 0, fb.u32(80)), pair(4, 8, 0, fb.u32(61813)),
        ]
        count = 35
    return b"\x02" + bytes([count]) + b"".join(elements)


@pytest.mark.parametrize("null_obis", [False, True], ids=["null value", "null code and value"])
def test_kamstrup_single_phase_pads_with_null(null_obis):
    reading = decode(fb.push_frame(kamstrup_body(False, False, null_obis=null_obis), b"\x0c" + fb.clock(2024, 3, 1, 12, 0, 0)))
    obis = reading_obis(reading)
    assert (reading.meter, reading.list) == ("kamstrup", 2)
    assert obis["1-1:31.7.0.255"] == D("5.64") and obis["1-1:32.7.0.255"] == D("232")
    assert not any(k.startswith("1-1:5") or k.startswith("1-1:7") for k in obis)


def test_kamstrup_hourly_energy_is_in_tens_of_wh():
    reading = decode(fb.push_frame(kamstrup_body(True, True, hourly=True), fb.octets(fb.clock(2024, 3, 1, 13, 0, 5))))
    obis = reading_obis(reading)
    assert reading.list == 3
    assert obis["1-1:1.8.0.255"] == D("42724400") and obis["1-1:4.8.0.255"] == D("618130")
    assert obis["0-1:1.0.0.255"] == "2024-03-01T13:00:05"


@pytest.mark.parametrize("header", [b"\x00", b"\x09\x0c" + fb.clock(2020, 2, 29, 23, 59, 58), b"\x0c" + fb.clock(2020, 2, 29, 23, 59, 58)])
def test_the_three_date_time_header_forms(header):
    body = fb.structure(fb.u32(5502))
    reading = decode(fb.push_frame(body, header))
    assert reading.list == 1
    assert reading.apdu_time == (None if header == b"\x00" else "2020-02-29T23:59:58")


def test_long_length_forms_0x81_and_0x82():
    long_id = "x" * 200  # visible-string length 0x81 0xC8
    items = [fb.structure(fb.obis(0, 0, 96, 1, 0), fb.visible(long_id))]
    items += [fb.structure(fb.obis(1, 0, 1, 7, 0), b"\x11\x05") for _ in range(140)]  # array count 0x81 0x8D
    body = fb.array(*items)
    assert b"\x01\x81\x8d" in body and b"\x0a\x81\xc8" in body
    reading = decode(fb.push_frame(body))
    assert reading.items[0][1] == long_id and len(reading.items) == 141
    big = fb.array(fb.structure(fb.obis(0, 0, 96, 1, 0), b"\x0a\x82\x01\x2c" + b"y" * 300))
    frame = fb.push_frame(big)
    assert decode_frame(frame)[0].items[0][1] == "y" * 300


def test_a_frame_whose_only_fault_is_its_fcs():
    frame = bytearray(raw("aidon_6525_it_list2"))
    frame[-3] ^= 0x01  # the FCS high byte; header, length and flags all intact
    assert decode_frame(bytes(frame)) == (None, "fcs")


def test_a_frame_split_by_the_segmentation_bit_is_reassembled():
    whole = raw("aidon_6525_it_list3_a")
    info = whole[9:-3]  # after flag, format(2), addresses(3), control, HCS(2); before FCS and flag
    assert info[:3] == fb.LLC
    parts = [info[:120], info[120:250], info[250:]]
    frames = [fb.hdlc_frame(part, segmented=(i < 2)) for i, part in enumerate(parts)]
    got = []
    Deframer(lambda apdu, frame: got.append(bytes(apdu))).feed(b"".join(frames))
    assert len(got) == 1
    assert reading_obis(Decoder().decode(got[0])) == reading_obis(decode(whole))


def test_a_lost_segment_voids_the_apdu_and_the_next_frame_still_decodes():
    info = raw("aidon_6525_it_list3_a")[9:-3]
    first = fb.hdlc_frame(info[:200], segmented=True)
    last = bytearray(fb.hdlc_frame(info[200:]))
    last[-2] ^= 0xFF  # the final segment is damaged
    got = []
    deframer = Deframer(lambda apdu, frame: got.append(bytes(apdu)))
    deframer.feed(first + bytes(last) + raw("aidon_6525_it_list1"))
    assert len(got) == 1 and Decoder().decode(got[0]).list == 1
    assert deframer.errors["segmented"] == 1


def test_an_encrypted_apdu_is_reported_as_encrypted():
    apdu = b"\xdb\x08" + b"KFM\x00\x00\x00\x00\x01" + b"\x20\x30" + b"\x00\x00\x00\x01" + bytes(28)
    assert decode_frame(fb.hdlc_frame(fb.LLC + apdu)) == (None, "encrypted")


def test_an_unknown_meter_with_obis_structures_decodes_generically():
    body = fb.array(
        fb.structure(fb.obis(1, 1, 0, 2, 129), fb.visible("LGF_V1")),
        aidon_item(1, 7, 0, fb.u32(777), 0, 27),
        aidon_item(32, 7, 0, fb.u16(2301), -1, 35),
    )
    reading = decode(fb.push_frame(body))
    assert reading.meter is None and reading.list == 2
    assert reading_obis(reading)["1-0:32.7.0.255"] == D("230.1")


@pytest.mark.parametrize(
    "body, error",
    [
        (fb.structure(fb.u32(1), fb.u32(2), fb.u32(3)), "unknown_list"),  # 3 bare values: no Kaifa list
        (fb.array(fb.structure(fb.obis(1, 0, 1, 7, 0), b"\x19" + bytes(5))), "axdr"),  # date-time cut short
        (fb.array(fb.structure(fb.obis(1, 0, 1, 7, 0), fb.u32(5))) + b"\x00", "axdr"),  # trailing byte
        (b"\x01\x05" + fb.structure(fb.obis(1, 0, 1, 7, 0), fb.u32(5)), "axdr"),  # count beyond the data
        (b"\x0a\x03abc", "unknown_list"),  # a bare string is no list
    ],
)
def test_malformed_bodies_get_named_errors(body, error):
    assert decode_frame(fb.push_frame(body)) == (None, error)


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x17" + struct.pack(">f", 230.5),
        b"\x17" + struct.pack(">f", 0.1),  # 0.100000001490116119384765625: what was sent
        b"\x17" + struct.pack(">f", -3.0),
        b"\x18" + struct.pack(">d", 12345678.9),  # more digits than an ESP32 float holds
        b"\x17" + bytes.fromhex("00000001"),  # the smallest subnormal
        b"\x18" + struct.pack(">d", -0.0),
    ],
)
def test_float_values_become_exact_decimals_without_a_float(encoded):
    from hanport.reading import decimal_text

    reading = decode(fb.push_frame(fb.array(fb.structure(fb.obis(1, 0, 1, 7, 0), encoded, fb.scaler_unit(-1, 27)))))
    _, value, scaler, unit = reading.items[0]
    assert isinstance(value, int) and unit == "W"
    sent = struct.unpack(">f" if encoded[0] == 0x17 else ">d", encoded[1:])[0]
    with localcontext() as exact:
        exact.prec = 1000  # enough for any float64: no rounding in the comparison
        assert Decimal(decimal_text(value, scaler)) == Decimal(sent).scaleb(-1)  # scaler -1 applied


def test_a_date_time_tag_value_is_a_clock_text():
    body = fb.array(fb.structure(fb.obis(0, 0, 1, 0, 0), b"\x19" + fb.clock(2023, 10, 29, 2, 59, 59)))
    assert decode(fb.push_frame(body)).items[0][1] == "2023-10-29T02:59:59"


def test_an_apdu_that_is_not_a_notification_is_refused():
    assert decode_frame(fb.hdlc_frame(fb.LLC + b"\xc4\x01\x81\x00\x09\x02ab")) == (None, "apdu")


def test_a_frame_without_llc_is_refused():
    assert decode_frame(fb.hdlc_frame(fb.notification(fb.structure(fb.u32(5))))) == (None, "llc")


def test_bytes_after_the_closing_flag_make_a_length_error():
    assert decode_frame(raw("aidon_6525_it_list1") + b"\x00") == (None, "length")


def test_obis_text_is_right_when_codes_share_c_d_e_and_its_memory_is_bounded():
    from hanport import axdr

    aidon, kamstrup = bytes([1, 0, 1, 7, 0, 255]), bytes([1, 1, 1, 7, 0, 255])
    for _ in range(3):
        assert axdr.obis_text(aidon, 0) == "1-0:1.7.0.255"
        assert axdr.obis_text(kamstrup, 0) == "1-1:1.7.0.255"
    for c in range(256):
        assert axdr.obis_text(bytes([1, 0, c, 7, 0, 255]), 0) == "1-0:%d.7.0.255" % c
    assert len(axdr._OBIS_TEXT) <= axdr._OBIS_CACHED
