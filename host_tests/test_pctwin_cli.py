"""The PC twin's and the demo's command lines: the device's config.json with single keys
overridden, one line on stderr for every mistake, and a realtime replay that ends."""
import json
import os
import subprocess
import sys
import time

import pytest

import pctwin
from brokers import Mosquitto, Subscriber
from corpus import BY_ID
from pc import parts as pc_parts
from pc.parts import UserError

ROOT = pc_parts.ROOT
CAPTURE = os.path.join(ROOT, "tools", "data", "aidon_demo.hex")


def run_tool(args, timeout=60):
    return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def settings(argv):
    return pctwin.settings(pctwin.parse_args(argv))


def test_without_a_name_the_pc_twin_is_hanport_pc():
    cfg, host, port = settings(["--broker", "10.0.0.2:1884", "--replay", CAPTURE])
    assert (host, port) == ("10.0.0.2", 1884)
    assert cfg["device"]["name"] == "hanport-pc" and cfg["mqtt"]["base_topic"] == "han/hanport-pc"


def test_the_device_config_is_read_and_only_given_options_override_it(tmp_path):
    conf = tmp_path / "config.json"
    conf.write_text(json.dumps({
        "device": {"name": "stue"}, "wifi": {"ssid": "hjemme", "password": "secret-pw"},
        "mqtt": {"host": "192.168.1.10", "port": 1883, "user": "han", "password": "pw-1",
                 "raw_frames": True, "keepalive": 120},
        "han": {"parity": "N"}, "diag_interval_s": 30}))
    cfg, host, port = settings(["--config", str(conf), "--replay", CAPTURE])
    assert (host, port, cfg["device"]["name"], cfg["mqtt"]["base_topic"]) == ("192.168.1.10", 1883, "stue", "han/stue")
    assert cfg["mqtt"]["raw_frames"] is True and cfg["mqtt"]["keepalive"] == 120
    assert cfg["han"]["parity"] == "N" and cfg["diag_interval_s"] == 30 and cfg["mqtt"]["password"] == "pw-1"
    (tmp_path / "pw").write_text("pw-2\n")
    cfg, host, port = settings(["--config", str(conf), "--replay", CAPTURE, "--broker", "127.0.0.1:1999",
                                "--base-topic", "meter", "--parity", "E", "--password-file", str(tmp_path / "pw")])
    assert (host, port, cfg["mqtt"]["base_topic"], cfg["han"]["parity"]) == ("127.0.0.1", 1999, "meter", "E")
    assert cfg["mqtt"]["password"] == "pw-2" and cfg["mqtt"]["keepalive"] == 120 and cfg["device"]["name"] == "stue"


def test_a_bad_config_lists_every_problem_one_per_line_exit_2(tmp_path):
    conf = tmp_path / "config.json"
    conf.write_text(json.dumps({"mqtt": {"host": "", "port": 70000, "password": "hemmelig"}, "han": {"rx": 6}}))
    r = run_tool(["tools/pctwin.py", "--config", str(conf), "--replay", CAPTURE])
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr and "hemmelig" not in r.stderr
    assert len(lines) >= 3 and all(line.startswith("pctwin: config %s: " % conf) for line in lines)
    assert any("mqtt.port" in line for line in lines) and any("han.rx" in line for line in lines)


@pytest.mark.parametrize("args, status, says", [
    (["--broker", "host:abc", "--replay", CAPTURE], 2, "--broker: the port in host:abc must be a number"),
    (["--broker", "mqtt://10.0.0.2:1883", "--replay", CAPTURE], 2, "without a scheme"),
    (["--broker", "h:1", "--replay", CAPTURE, "--state-dir", CAPTURE], 2, "is a file, not a directory"),
    (["--broker", "h:1", "--user", "u", "--password-file", "/nonexistent/pw", "--replay", CAPTURE], 1,
     "cannot read the password file /nonexistent/pw"),
    (["--replay", CAPTURE], 2, "no broker"),
    (["--broker", "h:1", "--replay", CAPTURE, "--foo"], 2, "unrecognized arguments: --foo"),
    (["--broker", "h:1", "--replay", CAPTURE, "--first-hourly", "5"], 2, "--first-hourly needs --realtime"),
    (["--broker", "h:1", "--replay", CAPTURE, "--duration", "-3"], 2, "must be a positive number"),
    (["--config", "/nonexistent/config.json", "--replay", CAPTURE], 2, "cannot read the config"),
    (["--config", CAPTURE, "--replay", CAPTURE], 2, "is not valid JSON"),
])
def test_user_errors_are_one_line_without_a_traceback(args, status, says):
    r = run_tool(["tools/pctwin.py"] + args)
    assert r.returncode == status, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pctwin: ") and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_hex_replay_with_one_bad_line_names_the_line(tmp_path):
    bad = tmp_path / "bad.hex"
    bad.write_text("l1\t%s\nthis is no hex\n" % BY_ID["aidon_6525_it_list1"]["hex"])
    r = run_tool(["tools/pctwin.py", "--broker", "127.0.0.1:1", "--replay", str(bad)])
    assert r.returncode == 1
    assert r.stderr == "pctwin: %s: line 2 byte 1: 'this' is not hex\n" % bad
    with pytest.raises(ValueError, match="line 2"):
        pc_parts.read_capture(str(bad))


@pytest.mark.parametrize("args, status, says", [
    (["--broker", "host:abc"], 2, "--broker: the port in host:abc"),
    (["--password-file", "/nonexistent/pw"], 1, "cannot read the password file"),
    (["--capture", "/nonexistent.hex"], 1, "cannot read /nonexistent.hex"),
    (["--first-hourly", "soon"], 2, "is not a number of seconds"),
])
def test_the_demo_answers_user_errors_in_one_line(args, status, says):
    r = run_tool(["tools/demo.py"] + args)
    assert r.returncode == status and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_realtime_replay_with_first_hourly_ends_after_one_pass(tmp_path):
    cap = tmp_path / "two.hex"
    cap.write_text("a\t%s\nb\t%s\n" % (BY_ID["aidon_6525_it_list1"]["hex"], BY_ID["aidon_6525_it_list3_a"]["hex"]))
    with Mosquitto(tmp_path, {"han": "pw-1"}) as b:
        (tmp_path / "pw").write_text("pw-1\n")
        sub = Subscriber(b.port, "han", "pw-1", "han/#")
        try:
            t0 = time.monotonic()
            r = run_tool(["tools/pctwin.py", "--broker", "127.0.0.1:%d" % b.port, "--user", "han",
                          "--password-file", str(tmp_path / "pw"), "--replay", str(cap), "--realtime",
                          "--first-hourly", "0"], timeout=60)
            took = time.monotonic() - t0
            assert r.returncode == 0, r.stderr
            assert 7 < took < 30, took  # List 1 at 0 s, List 3 in the first 10 s slot (7.5 s)
            time.sleep(0.3)
            topics = [m[1] for m in sub.messages]
            assert "han/hanport-pc/list1" in topics and "han/hanport-pc/list3" in topics
        finally:
            sub.close()


def test_realtime_replay_source_is_done_once_every_frame_was_sent():
    l1 = bytes.fromhex(BY_ID["aidon_6525_it_list1"]["hex"])
    l3 = bytes.fromhex(BY_ID["aidon_6525_it_list3_a"]["hex"])
    src = pc_parts.ReplaySource([("a", l1), ("b", l3)], realtime=True, first_hour_ms=0, start_delay_ms=-7500)
    buf = bytearray(512)
    t0 = time.monotonic()
    while not src.done() and time.monotonic() - t0 < 6:
        src.readinto(buf)
        time.sleep(0.01)
    assert src.done()
