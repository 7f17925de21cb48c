"""The words diag uses for the meter and the network: an encrypted meter, a DNS
failure, and the same messages in Norwegian (language "nb")."""
import json
import socket

import framebuild as fb
import pytest
from hanport import diag
from hanport.app import run
from hanport.diag import SILENT_S, error_text, meter_state
from hanport.reading import json_string
from loop_fakes import FakeBroker, FakeClock, FakeSystem, FrameSource, MemStorage, NoWatchdog, UpLink, config
from mpy import describe

ENCRYPTED_MSG = ("the meter encrypts its data: ask the grid company (nettselskapet) for the keys; "
                 "this dongle cannot decrypt yet")


def test_meter_state_keeps_its_three_argument_form():
    assert meter_state(5, None, None) == ("waiting", 5, None)
    assert meter_state(100, 99, 99) == ("ok", 1, None)
    assert meter_state(100, 100, 10)[0] == "no_frames"


def test_frames_that_are_all_ciphered_say_the_meter_encrypts():
    assert meter_state(100, 100, None, encrypted=37) == ("encrypted", 0, ENCRYPTED_MSG)
    assert meter_state(100, 100, 10, encrypted=37) == ("encrypted", 0, ENCRYPTED_MSG)
    assert meter_state(100, 100, None, encrypted=0)[0] == "no_frames"
    # readings arrive: a stray ciphered frame does not matter
    assert meter_state(100, 100, 99, encrypted=3) == ("ok", 0, None)
    # silence is silence, whatever came before
    assert meter_state(100, 100 - SILENT_S, None, encrypted=3)[0] == "silent"


def test_an_encrypted_meter_shows_in_the_diag_payload():
    clock = FakeClock(epoch=1700000000)
    apdu = b"\xdb\x08" + b"KFM\x00\x00\x00\x00\x01" + b"\x82\x01\x00" + bytes(range(256))
    src = FrameSource(clock, [fb.hdlc_frame(fb.LLC + apdu)], 2500, count=40)
    broker = FakeBroker(password="secret")
    app = run(src, clock, UpLink(), broker.factory, MemStorage(), NoWatchdog(), FakeSystem(),
              config(diag_interval_s=10), stop=lambda a: clock.t >= 60000, log=lambda s: None)
    d = json.loads(diag.payload(app))
    assert d["decode_errors"]["encrypted"] >= 20 and d["readings"] == 0
    assert (d["meter"], d["meter_msg"]) == ("encrypted", ENCRYPTED_MSG)
    app.language = "nb"  # the lead sets it from cfg["language"]
    d = json.loads(diag.payload(app))
    assert d["meter_msg"].startswith("m\u00e5leren krypterer dataene: be nettselskapet om n\u00f8klene")


@pytest.mark.parametrize("e", [
    OSError(-2), OSError(-3), OSError(202), OSError(200),  # unix port / ESP32 (lwIP EAI_*)
    socket.gaierror(-2, "Name or service not known"),
    socket.gaierror(-3, "Temporary failure in name resolution"),
])
def test_a_failed_name_lookup_is_dns_failed(e):
    assert error_text(e) == "dns_failed"


def test_errno_names_are_unchanged():
    assert error_text(OSError(111)) == "connection_refused"
    assert error_text(OSError(2)) == "os_error_2"  # ENOENT is not a DNS code


def test_every_meter_message_has_a_norwegian_version():
    cases = [(95, None, None, 0), (100, 100 - SILENT_S, 50, 0), (100, 100, 10, 0), (100, 100, 10, 4)]
    en = [meter_state(*c)[2] for c in cases]
    nb = [meter_state(*c, lang="nb")[2] for c in cases]
    assert [m.split(" ")[0] for m in nb] == ["ingen", "ingen", "data", "m\u00e5leren"]
    assert nb[0].startswith("ingen data fra m\u00e5leren p\u00e5 95 s") and "nettselskapet" in nb[0]
    assert "95 s" in en[0] and "nettselskapet" in en[0]
    assert all(len(m) < 160 for m in en + nb), [len(m) for m in en + nb]
    assert meter_state(100, 100, 10, lang="xx") == meter_state(100, 100, 10)  # unknown: English


def test_micropython_says_the_same_in_both_languages(mpy):
    script = ("from hanport.diag import meter_state, error_text\n"
              "from hanport.reading import json_string\n"
              "import sys\n"
              "for lang in ('en', 'nb'):\n"
              "    for c in ((95, None, None, 0), (100, 70, 50, 0), (100, 100, 10, 0), (100, 100, 10, 4)):\n"
              "        s = meter_state(c[0], c[1], c[2], c[3], lang)\n"
              "        sys.stdout.write(s[0] + ' ' + json_string(s[2]) + '\\n')\n"
              "print(error_text(OSError(-2)), error_text(OSError(202)), error_text(OSError(116)))\n"
              "import hanport.diag, sys\n"
              "print('hanport.diag_nb' in sys.modules)\n")
    p = mpy(script)
    assert p.returncode == 0, describe(p)
    want = []
    for lang in ("en", "nb"):
        for c in ((95, None, None, 0), (100, 70, 50, 0), (100, 100, 10, 0), (100, 100, 10, 4)):
            s = meter_state(*c, lang=lang)
            want.append(s[0] + " " + json_string(s[2]))
    want.append("dns_failed dns_failed timed_out")
    want.append("True")
    assert p.stdout.decode("utf-8").splitlines() == want


def test_english_never_loads_the_norwegian_words(mpy):
    p = mpy("import sys\nfrom hanport.diag import meter_state\n"
            "meter_state(95, None, None)\nmeter_state(100, 100, 10, 4)\n"
            "print('hanport.diag_nb' in sys.modules)\n")
    assert p.returncode == 0 and p.stdout == b"False\n", describe(p)


# The payload of diag_run's first stand-in app, as the dongle has always sent it.
OK_PAYLOAD = (
    '{"uptime_s":3600,"reset_cause":"power_on","last_crash":null,"free_heap":31234,'
    '"largest_free_block":null,"link":"up","rssi":-67,"mqtt":"connected","connects":3,'
    '"connect_failures":12,"disconnects":2,"last_connect_error":"connection_refused",'
    '"meter":"ok","meter_silent_s":1,"meter_msg":null,"bytes":123456,"frames":1440,'
    '"readings":1438,"published":1500,"sent":1600,"queued":7,"dropped":1,"queue_torn":0,'
    '"replaced":5,"rx_overflows":0,"irq_errors":0,"ntp_failures":1,'
    '"hdlc_errors":{"crc":3,"length":1,"overflow":0},"decode_errors":{"encrypted":0,'
    '"layout":1,"short":2},"energy":{"gaps":2,"hours":1,"resets":0},"errors":{"frame":0,'
    '"publish":1}}'
)


def test_the_diag_payload_is_the_same_bytes_on_micropython_and_cheap_to_build(mpy):
    import diag_run

    want = [diag.payload(app) for app in diag_run.APPS]
    assert want[0] == OK_PAYLOAD.encode()
    p = mpy("host_tests/diag_run.py")
    assert p.returncode == 0, describe(p)
    assert p.stdout.splitlines() == want
    # What one payload allocates (garbage by the next collection); 4.4-4.8 KB
    # before the payload became one % of a constant.
    spent = [int(line.split()[1]) for line in p.stderr.decode().splitlines()]
    assert len(spent) == 3 and max(spent) < 4096, spent
