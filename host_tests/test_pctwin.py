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
from hanport.decode import Decoder
from hanport.hdlc import Deframer

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


def test_simulated_meter_sends_the_recorded_layout_with_an_hour_per_list3_across_dst():
    """pc/meter.py: the items, types and units of the recorded Aidon 6525 frames; the
    List 3 clock in Norwegian time, one hour further at each; registers by the profile."""
    from datetime import datetime, timezone

    from pc import meter as pc_meter

    def decoded(f):
        got = []
        dec = Decoder()
        d = Deframer(lambda apdu, fr: got.append(dec.decode(apdu)))
        d.feed(f, len(f))
        return got[0]

    def shape(r):
        return [(o, type(v), s, u) for o, v, s, u in r.items]

    m = pc_meter.AidonMeter(datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc))  # 00:00 before the change
    assert shape(decoded(m.list1())) == shape(decoded(frame("aidon_6525_it_list1")))
    assert shape(decoded(m.list2())) == shape(decoded(frame("aidon_6525_it_list2")))
    assert shape(decoded(m.list3())) == shape(decoded(frame("aidon_6525_it_list3_a")))
    clocks, regs, planned = [], [], []
    for _ in range(4):
        items = dict((o, v * 10 ** s if s else v) for o, v, s, _ in decoded(m.list3()).items)
        clocks.append(items["0-0:1.0.0.255"])
        regs.append(items["1-0:1.8.0.255"])
        planned.append(m.wh)
        m.next_hour()
    assert clocks == ["2026-03-29T00:00:00", "2026-03-29T01:00:00", "2026-03-29T03:00:00", "2026-03-29T04:00:00"]
    assert [b - a for a, b in zip(regs, regs[1:])] == planned[:3]
    assert regs[0] == pc_meter.START_REGISTERS[0]


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


def test_demo_replays_a_capture_with_no_broker_and_shows_the_meter(tmp_path):
    r = run_tool(["tools/demo.py", "--capture", "--duration", "12", "--first-hourly", "5"], timeout=90)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "embedded amqtt broker" in out
    assert "Meter     Aidon 6525, id 7359992899161110 (AIDON_V0001)" in out
    assert "237.7 V" in out  # voltage L1 of the List 3
    assert "registers: import 21882.340 kWh" in out  # the hourly register, exact
    assert "Status    offline" in out  # Ctrl-C / the end publishes offline
    assert "mqtt connected" in out
    assert out.rstrip().endswith("demo: stopped")


def run_in_pty(args, timeout=90):
    """(exit status, what the terminal showed last: the text after the last cursor-home)."""
    import re
    import select

    master, slave = pty.openpty()
    p = subprocess.Popen([PY] + args, cwd=ROOT, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    data = bytearray()
    t_end = time.monotonic() + timeout
    try:
        while time.monotonic() < t_end:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif p.poll() is not None:
                break
        status = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    text = data.decode("utf-8", "replace")
    screens = text.split("\x1b[H")
    return status, screens, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screens[-1]).replace("\r", "")


def test_demo_shows_hours_today_month_capacity_tariff_and_discovery_in_place():
    import re

    status, screens, last = run_in_pty(["tools/demo.py", "--duration", "20", "--hour-every", "10",
                                        "--history-hours", "50"])
    assert status == 0, last
    assert len(screens) > 20  # refreshed in place (cursor home), four times a second
    lines = last.splitlines()

    def line(start):
        got = [x for x in lines if x.startswith(start)]
        assert got, "no line %r in:\n%s" % (start, last)
        return got[-1]

    kwh = r"\d+\.\d{3} kWh"
    # 50 hours of history, then one hour every 10 s: at least 50 hour messages
    n = int(re.search(r"\((\d+) hour messages\)", line("   Last hour")).group(1))
    assert n >= 50, n
    assert re.search(r"Last hour   \d{4}-\d\d-\d\d \d\d:00-\d\d:00 +import +" + kwh, line("   Last hour"))
    assert re.search(r"This hour   since \d\d:00 +import +" + kwh + " +so far", line("   This hour"))
    assert re.search(r"Today       \d{4}-\d\d-\d\d +import +" + kwh + " +export +" + kwh, line("   Today"))
    assert re.search(r"This month  [A-Z][a-z]+ \d{4} +import +" + kwh + " +export +" + kwh, line("   This month"))
    assert len(re.findall(kwh + r" \(\d+ [A-Z][a-z]{2}, \d\d:00\)", line("   Peaks"))) == 3  # three days
    assert re.search(r"Average     " + kwh + r": step \d+ \(\d+-\d+ kWh\)", line("   Average"))
    assert re.search(r"Headroom    " + kwh + " more can be used this hour before the average passes "
                     + kwh + r" \(step \d+\)", line("   Headroom"))
    m = re.search(r"Home Assistant  (\d+) sensors announced under homeassistant/ \((\d+) config", last)
    assert m and int(m.group(1)) >= 8, last  # one a second, paced
    assert line("                 latest: ")
    assert "Status    offline" in last and "mqtt connected" in last
    assert "Traceback" not in last


def test_demo_refuses_an_hour_shorter_than_a_list2_slot():
    r = run_tool(["tools/demo.py", "--hour-every", "3"])
    assert r.returncode == 2 and "--hour-every must be at least 10 seconds" in r.stderr


# -- the PC twin keeps its queue and its energy state in --state-dir -------------------

def _hours(sub, suffix="/hour"):
    import json

    return [json.loads(m[2]) for m in sub.on(suffix)]


def _wait(pred, timeout=15):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _twin(port, pw, tty_name, state_dir):
    return subprocess.Popen([PY, "tools/pctwin.py", "--broker", "127.0.0.1:{}".format(port),
                             "--user", "han", "--password-file", pw, "--serial", tty_name,
                             "--name", "kept", "--state-dir", state_dir, "--no-discovery"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_pctwin_state_dir_keeps_the_queue_and_the_energy_state_across_a_restart(tmp_path):
    """Hours 10-11 delivered; the broker goes away, the 12:00 List 3 closes hour 11-12
    into the queue, SIGTERM; a new twin on the same --state-dir delivers it once the
    broker is back, and the 13:00 List 3 makes hour 12-13 from the 12:00 register the
    first twin kept (the second one never saw that frame)."""
    import json
    import signal
    from datetime import datetime, timezone

    from pc import meter as pc_meter

    m = pc_meter.AidonMeter(datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc))  # 10:00 in Oslo
    frames, imports = [], []
    for _ in range(4):  # List 3 at 10:00, 11:00, 12:00, 13:00
        frames.append(m.list3())
        imports.append(m.wh)
        m.next_hour()
    state = str(tmp_path / "state")
    pw = str(tmp_path / "pw")
    (tmp_path / "pw").write_text("pw-1\n")
    procs, ptys = [], []
    b = Mosquitto(tmp_path, {"han": "pw-1"}).start()
    try:
        sub = Subscriber(b.port, "han", "pw-1", "han/kept/#")
        master, slave = pty.openpty()
        tty.setraw(master)
        ptys += [master, slave]
        a = _twin(b.port, pw, os.ttyname(slave), state)
        procs.append(a)
        assert _wait(lambda: sub.on("/status")), a.stderr.read() if a.poll() is not None else "no status"
        os.write(master, frames[0] + frames[1])
        assert _wait(lambda: _hours(sub)), "no hour from the first twin"
        sub.close()
        b.stop()  # the broker goes away
        os.write(master, frames[2])  # 12:00: hour 11-12 and the List 3 wait in the queue
        time.sleep(2)
        a.send_signal(signal.SIGTERM)
        assert a.wait(15) == 0, a.stderr.read()
        assert "Traceback" not in a.stderr.read()
        first = _hours(sub)

        b.start()
        sub = Subscriber(b.port, "han", "pw-1", "han/kept/#")
        master, slave = pty.openpty()
        tty.setraw(master)
        ptys += [master, slave]
        c = _twin(b.port, pw, os.ttyname(slave), state)
        procs.append(c)
        assert _wait(lambda: len(_hours(sub)) >= 1), "the queued hour did not arrive after the restart"
        os.write(master, frames[3])  # 13:00
        assert _wait(lambda: len(_hours(sub)) >= 2), "no hour after the restart"
        assert _wait(lambda: any(json.loads(x[2])["meter_clock"].endswith("13:00:00") for x in sub.on("/energy")))
        c.send_signal(signal.SIGTERM)
        assert c.wait(15) == 0, c.stderr.read()
        second = _hours(sub)
        energy = json.loads(sub.on("/energy")[-1][2])
        clocks = [json.loads(x[2])["meter_clock"] for x in sub.on("/list3")]
    finally:
        sub.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
        b.stop()
        for fd in ptys:
            os.close(fd)
    hour = lambda h: {"start": "2026-03-10T%02d:00:00" % h, "end": "2026-03-10T%02d:00:00" % (h + 1),  # noqa: E731
                      "hours": 1, "import_wh": imports[h - 10]}
    got = [{k: x[k] for k in ("start", "end", "hours", "import_wh")} for x in first + second]
    assert got == [hour(10), hour(11), hour(12)]  # each hour once, in order
    assert clocks == ["2026-03-10T12:00:00", "2026-03-10T13:00:00"]  # the queued List 3, then the new
    assert energy["today_import_wh"] == energy["month_import_wh"] == sum(imports[:3])
    assert energy["last_hour_import_wh"] == imports[2]
    assert sorted(os.listdir(state))  # the state lives in the directory
