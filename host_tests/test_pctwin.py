"""The PC twin's parts and programs: meter timing, replay, serial, the CLI, the demo."""
import os
import pty
import subprocess
import sys
import time
import tty

from pc import parts as pc_parts  # noqa: E402
from brokers import Mosquitto, Subscriber
from corpus import BY_ID

ROOT = pc_parts.ROOT
CAPTURE = os.path.join(ROOT, "tools", "data", "aidon_demo.hex")
PY = sys.executable


def frame(frame_id):
    return bytes.fromhex(BY_ID[frame_id]["hex"])


# -- the meter's timing -------------------------------------------------------------

def test_meter_program_sends_list1_every_2_5_s_list2_every_10_s_list3_hourly():
    frames = pc_parts.read_capture(CAPTURE)
    prog = pc_parts.meter_program(frames, first_hour_ms=15000)
    slots = []
    for t, label, _ in prog:
        if t > 2 * 3600 * 1000 + 20000:
            break
        slots.append((t, BY_ID[label]["list"], BY_ID[label]["expected"]["ok"]))
    assert [s[0] for s in slots[:8]] == [0, 2500, 5000, 7500, 10000, 12500, 15000, 17500]
    assert [s[1] for s in slots[:8]] == [1, 1, 1, 2, 1, 1, 1, 3]
    hourly = [t for t, lst, ok in slots if lst == 3 and ok]
    assert hourly == [17500, 3617500, 7217500]  # first 10 s slot after each hour mark
    tens = [t for t, lst, ok in slots if lst in (2, 3) and ok]
    assert all(b - a == 10000 for a, b in zip(tens, tens[1:]))
    damaged = [t for t, lst, ok in slots if not ok]
    assert damaged[:2] == [50000, 150000]  # a damaged capture now and then, every 100 s


def test_next_hourly_is_at_ten_seconds_past_the_hour():
    base = time.mktime((2024, 5, 1, 13, 59, 0, 0, 0, -1))
    assert pc_parts.ms_to_next_hourly(base) == 70000
    assert pc_parts.ms_to_next_hourly(base + 75) == 3595000


def test_realtime_replay_paces_bytes_at_2400_baud():
    l3 = frame("aidon_6525_it_list3_a")
    ends = []
    src = pc_parts.ReplaySource([("aidon_6525_it_list2", frame("aidon_6525_it_list2")),
                                 ("aidon_6525_it_list3_a", l3)],
                                realtime=True, first_hour_ms=0, start_delay_ms=-7500,  # slot 3 now
                                on_frame_end=lambda label, t: ends.append(t))
    buf = bytearray(256)
    got = bytearray()
    t0 = time.monotonic()
    while not ends and time.monotonic() - t0 < 5:
        n = src.readinto(buf)
        if n:
            got += buf[:n]
        time.sleep(0.005)
    took = ends[0] - t0
    assert bytes(got) == l3  # the first 10 s slot after the hour mark: List 3
    assert abs(took - len(l3) * 11 / 2400) < 0.15, took  # 377 bytes: 1.73 s on the wire


def test_read_capture_takes_hex_lines_and_raw_binary(tmp_path):
    hexfile = tmp_path / "c.hex"
    hexfile.write_text("# comment\n\nlabelled\t{}\n{}\n".format(
        BY_ID["aidon_6525_it_list1"]["hex"], BY_ID["aidon_6525_it_list2"]["hex"]))
    got = pc_parts.read_capture(str(hexfile))
    assert got == [("labelled", frame("aidon_6525_it_list1")), ("line 4", frame("aidon_6525_it_list2"))]
    binfile = tmp_path / "c.bin"
    binfile.write_bytes(b"\x00\x13" + frame("aidon_6525_it_list1") + frame("aidon_6525_it_list3_a"))
    got = pc_parts.read_capture(str(binfile))
    assert [f for _, f in got] == [frame("aidon_6525_it_list1"), frame("aidon_6525_it_list3_a")]


def test_serial_source_reads_what_the_port_receives_without_blocking():
    master, slave = pty.openpty()
    tty.setraw(master)
    try:
        src = pc_parts.SerialSource(os.ttyname(slave))
        buf = bytearray(64)
        t = time.monotonic()
        assert src.readinto(buf) in (None, 0)
        assert time.monotonic() - t < 0.05
        os.write(master, frame("aidon_6525_it_list1"))
        time.sleep(0.1)
        n = src.readinto(buf)
        assert bytes(buf[:n]) == frame("aidon_6525_it_list1")
        src.close()
    finally:
        os.close(master)
        os.close(slave)


# -- the programs -------------------------------------------------------------------

def run_tool(args, timeout=60, **kw):
    return subprocess.run([PY] + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def test_simulate_meter_without_the_port_says_so_without_a_traceback():
    r = run_tool(["tools/simulate_meter.py", "--port", "/dev/does-not-exist"])
    assert r.returncode == 1
    assert "cannot open serial port /dev/does-not-exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_simulate_meter_writes_frames_with_the_meters_timing():
    master, slave = pty.openpty()
    tty.setraw(master)
    try:
        p = subprocess.Popen([PY, "tools/simulate_meter.py", "--port", os.ttyname(slave),
                              "--count", "2", "--quiet", "--first-hourly", "3600"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        got = bytearray()
        arrivals = []
        want = frame("aidon_6525_it_list1") + frame("aidon_list1_with_7d_byte")
        t0 = time.monotonic()
        os.set_blocking(master, False)
        while len(got) < len(want) and time.monotonic() - t0 < 10:
            try:
                chunk = os.read(master, 4096)
                got += chunk
                arrivals.append((time.monotonic(), len(got)))
            except BlockingIOError:
                time.sleep(0.01)
        p.wait(10)
        n1 = len(frame("aidon_6525_it_list1"))
        assert bytes(got) == want  # slots 0 and 1: the capture's two List 1 frames
        first_done = next(t for t, n in arrivals if n >= n1)
        second_start = next(t for t, n in arrivals if n > n1)
        assert 2.0 < second_start - first_done < 3.0  # next slot 2.5 s later
        assert p.returncode == 0, p.stderr.read()
    finally:
        os.close(master)
        os.close(slave)


def test_pctwin_replays_a_capture_into_the_broker(tmp_path):
    with Mosquitto(tmp_path, {"han": "pw-1", "viewer": "pw-2"}) as b:
        (tmp_path / "pw").write_text("pw-1\n")
        sub = Subscriber(b.port, "viewer", "pw-2", "meter/#")
        try:
            r = run_tool(["tools/pctwin.py", "--broker", "127.0.0.1:{}".format(b.port),
                          "--user", "han", "--password-file", str(tmp_path / "pw"),
                          "--replay", CAPTURE, "--base-topic", "meter", "--raw-frames"])
            assert r.returncode == 0, r.stderr
            assert "5 readings" in r.stdout
            assert "pw-1" not in r.stdout + r.stderr
            time.sleep(0.3)
            topics = [m[1] for m in sub.messages]
            assert topics.count("meter/list1") == 2 and topics.count("meter/list3") == 2
            assert topics.count("meter/raw") == 5
            assert topics[0] == "meter/status" and topics[-1] == "meter/status"
        finally:
            sub.close()


def test_pctwin_reads_a_serial_port(tmp_path):
    master, slave = pty.openpty()
    tty.setraw(master)
    with Mosquitto(tmp_path, {"han": "pw-1"}) as b:
        (tmp_path / "pw").write_text("pw-1\n")
        sub = Subscriber(b.port, "han", "pw-1", "han/#")
        p = subprocess.Popen([PY, "tools/pctwin.py", "--broker", "127.0.0.1:{}".format(b.port),
                              "--user", "han", "--password-file", str(tmp_path / "pw"),
                              "--serial", os.ttyname(slave), "--name", "bench", "--duration", "4"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            os.write(master, frame("aidon_6525_it_list2"))
            assert p.wait(15) == 0
            time.sleep(0.2)
            assert [m[1] for m in sub.messages if "/list" in m[1]] == ["han/bench/list2"]
        finally:
            sub.close()
            if p.poll() is None:
                p.kill()
            os.close(master)
            os.close(slave)


def test_pctwin_with_a_missing_password_file_says_so():
    r = run_tool(["tools/pctwin.py", "--broker", "127.0.0.1:1", "--user", "u",
                  "--password-file", "/nonexistent/pw", "--replay", CAPTURE])
    assert r.returncode == 1
    assert "cannot read the password file" in r.stderr and "Traceback" not in r.stderr


def test_demo_runs_with_no_broker_and_shows_the_meter(tmp_path):
    r = run_tool(["tools/demo.py", "--duration", "12", "--first-hourly", "5"], timeout=90)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "embedded amqtt broker" in out
    assert "Meter     Aidon 6525, id 7359992899161110 (AIDON_V0001)" in out
    assert "237.7 V" in out  # voltage L1 of the List 3
    assert "21882.340 kWh" in out  # the hourly register, exact
    assert "Status    offline" in out  # Ctrl-C / the end publishes offline
    assert "mqtt connected" in out
    assert out.rstrip().endswith("demo: stopped")
