"""Every recorded frame decodes to the values its source states."""
import pytest

from corpus import FRAMES, expected_obis, reading_obis
from hexdecode import decode_frame
from hanport.crc16 import crc16
from hanport.reading import decimal_text

GOOD = [f for f in FRAMES if f["expected"]["ok"]]
BAD = [f for f in FRAMES if not f["expected"]["ok"]]


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x906E


def test_crc16_covers_a_range_without_slicing():
    data = b"xx123456789yy"
    assert crc16(data, 2, 11) == 0x906E


@pytest.mark.parametrize("frame", GOOD, ids=[f["id"] for f in GOOD])
def test_real_frame_decodes_to_its_expected_values(frame):
    reading, error = decode_frame(bytes.fromhex(frame["hex"]))
    assert error is None
    expected = frame["expected"]
    assert reading.meter == expected["manufacturer"]
    assert reading.list == expected["list"]
    assert reading.apdu_time == expected["apdu_time"]
    assert reading_obis(reading) == expected_obis(frame)


@pytest.mark.parametrize("frame", BAD, ids=[f["id"] for f in BAD])
def test_broken_or_foreign_frame_is_rejected_with_its_named_error(frame):
    reading, error = decode_frame(bytes.fromhex(frame["hex"]))
    assert reading is None
    assert error == frame["expected"]["error"]


def test_every_number_is_an_int_with_a_scaler_never_a_float():
    for frame in GOOD:
        reading, _ = decode_frame(bytes.fromhex(frame["hex"]))
        for obis, value, scaler, unit in reading.items:
            assert not isinstance(value, float), obis
            if scaler is not None:
                assert isinstance(value, int) and isinstance(scaler, int), obis


@pytest.mark.parametrize(
    "value, scaler, text",
    [
        (2376, -1, "237.6"),
        (2188234, 1, "21882340"),
        (892, -3, "0.892"),
        (25, -3, "0.025"),
        (-5, -1, "-0.5"),
        (-46, -1, "-4.6"),
        (2500, -1, "250"),
        (0, -2, "0"),
        (0, 0, "0"),
        (1234567891, -2, "12345678.91"),  # more digits than a 32-bit float holds
        (18446744073709551615, 0, "18446744073709551615"),
        (-9223372036854775808, -3, "-9223372036854775.808"),
    ],
)
def test_decimal_text_is_exact(value, scaler, text):
    assert decimal_text(value, scaler) == text


def test_the_cpython_crc_agrees_with_the_table_the_device_uses():
    import random

    from hanport.crc16 import crc16_table

    rng = random.Random(1)
    assert crc16_table(b"123456789") == 0x906E
    for size in list(range(0, 40)) + [377, 2047]:
        data = bytes(rng.randrange(256) for _ in range(size))
        assert crc16(data) == crc16_table(data)
        assert crc16(bytearray(data), 1, max(1, size - 2)) == crc16_table(data, 1, max(1, size - 2))
