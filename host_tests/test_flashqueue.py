"""hanport.flashqueue: the durable FIFO of List 3 and hour messages.

Every behaviour runs on two storages: the firmware's FlashStorage over a
directory (what the ESP32 and the PC twin use) and the in-RAM MemStorage. A
"reboot" is a new FlashQueue on the same stored files. A power cut is an
exception that is not an OSError, so the queue cannot tidy up after it.
"""
import os
import random
import subprocess
import sys

import pytest

from firmware.storage import FlashStorage
from hanport.flashqueue import FlashQueue
from pc.memstorage import MemStorage

HERE = os.path.dirname(os.path.abspath(__file__))
L3 = b"han/hanport/list3"
HOUR = b"han/hanport/hour"
DAY = 24


class PowerCut(Exception):
    pass


class Disk:
    """The stored files, surviving reboots; open() is the storage a booting device gets."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        self.dir = str(tmp_path / "data")
        self.mem = MemStorage()
        if kind == "flash":
            os.makedirs(self.dir, exist_ok=True)  # FlashStorage makes one level only

    def open(self):
        return FlashStorage(self.dir) if self.kind == "flash" else self.mem


@pytest.fixture(params=["flash", "mem"])
def disk(request, tmp_path):
    return Disk(request.param, tmp_path)


class Faulty:
    """Storage wrapper. fail_at=k: the k-th call (any method, from 1) raises
    OSError(5) without touching the storage. cut_append=k: the next append
    stores only its first k bytes, then the power goes. cut_at=k: the power
    goes before the k-th call. Counts what writes flash."""

    def __init__(self, base):
        self.base = base
        self.calls = 0
        self.fail_at = None
        self.cut_at = None  # k: the power goes just before the k-th call
        self.cut_append = None
        self.cut_write = False
        self.appends = self.writes = self.removes = 0

    def _call(self):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(5, "I/O error")
        if self.calls == self.cut_at:
            raise PowerCut()

    def read(self, name):
        self._call()
        return self.base.read(name)

    def write(self, name, data):
        self._call()
        if self.cut_write:
            self.cut_write = False
            raise PowerCut()
        self.writes += 1
        self.base.write(name, data)

    def append(self, name, data):
        self._call()
        self.appends += 1
        if self.cut_append is not None:
            k, self.cut_append = self.cut_append, None
            self.base.append(name, bytes(data[:k]))
            raise PowerCut()
        self.base.append(name, data)

    def size(self, name):
        self._call()
        return self.base.size(name)

    def read_at(self, name, offset, n):
        self._call()
        return self.base.read_at(name, offset, n)

    def remove(self, name):
        self._call()
        self.removes += 1
        self.base.remove(name)

    def names(self, prefix):
        self._call()
        return self.base.names(prefix)


def msg(i, n=60, topic=L3):
    body = ("%05d|" % i).encode()
    return topic, (body * (n // len(body) + 1))[:n]


def record_len(m):
    return 11 + len(m[0]) + len(m[1])


def copy_of(storage):
    """The stored files in a fresh MemStorage, to look at without changing them."""
    c = MemStorage()
    for name in storage.names(""):
        c.write(name, storage.read(name))
    return c


def drain(q):
    got = []
    while True:
        m = q.peek()
        if m is None:
            assert len(q) == 0
            return got
        got.append(m)
        q.pop()


def contents(storage, **kw):
    """What a device booting from storage would deliver, and the torn count it finds."""
    q = FlashQueue(copy_of(storage), **kw)
    got = drain(q)
    return got, q.torn


def queue_files(storage):
    return [n for n in storage.names("q.")]


def flash_bytes(storage):
    return sum(storage.size(n) for n in queue_files(storage))


# -- the Storage port's new calls -------------------------------------------------

def test_storage_appends_reads_at_offsets_lists_and_removes(disk):
    st = disk.open()
    assert st.size("q.1") == 0 and st.read_at("q.1", 0, 5) == b""
    st.append("q.1", b"hello")
    st.append("q.1", b" world")
    st.write("qhead", b"ptr")
    st.write("qhead", b"pointer")
    st.append("other", b"x")
    assert st.size("q.1") == 11 and st.read("q.1") == b"hello world"
    assert st.read_at("q.1", 6, 5) == b"world"
    assert st.read_at("q.1", 9, 5) == b"ld"  # shorter at the end
    assert st.read_at("q.1", 20, 5) == b""  # past it
    assert sorted(st.names("q")) == ["q.1", "qhead"]
    assert sorted(st.names("")) == ["other", "q.1", "qhead"]  # no temporary files
    st.remove("q.1")
    st.remove("q.1")  # missing: no error
    assert st.read("q.1") is None and st.size("q.1") == 0 and sorted(st.names("q")) == ["qhead"]
    for bad in ("", "a/b", ".hidden", "x.tmp"):
        with pytest.raises(ValueError):
            st.append(bad, b"")


def test_the_pc_twin_keeps_its_queue_in_the_firmwares_flash_storage(tmp_path):
    from pc.parts import PcStorage

    d = tmp_path / "state" / "nested"
    st = PcStorage(str(d))
    assert isinstance(st, FlashStorage) and d.is_dir()
    assert isinstance(PcStorage(None), MemStorage)
    q = FlashQueue(st)
    q.put(*msg(1))
    assert FlashQueue(PcStorage(str(d))).peek() == msg(1)


# -- order and reboots --------------------------------------------------------

def test_messages_come_out_in_the_order_they_went_in(disk):
    q = FlashQueue(disk.open(), max_bytes=64 * 1024, segment_bytes=1024)
    sent = [msg(i, 20 + i % 90) for i in range(200)]  # many segments
    for m in sent:
        q.put(*m)
    assert len(q) == 200
    assert drain(q) == sent
    assert len(queue_files(disk.open())) == 1  # emptied segments are removed, the last stays


def test_an_empty_queue_peeks_none_and_pop_does_nothing(disk):
    q = FlashQueue(disk.open())
    assert q.peek() is None and len(q) == 0
    q.pop()
    assert FlashQueue(disk.open()).peek() is None


def test_a_reboot_between_any_two_operations_keeps_the_queue(disk):
    rnd = random.Random(7)
    kw = dict(max_bytes=64 * 1024, segment_bytes=1024)
    q = FlashQueue(disk.open(), **kw)
    model = []
    n = 0
    for _ in range(300):
        if rnd.random() < 0.55:
            m = msg(n, rnd.randrange(1, 250))
            n += 1
            q.put(*m)
            model.append(m)
        elif model:
            assert q.peek() == model[0]
            q.pop()
            model.pop(0)
        q = FlashQueue(disk.open(), **kw)  # reboot
        assert len(q) == len(model)
        assert q.peek() == (model[0] if model else None)
        assert q.torn == 0 and q.dropped == 0
    assert contents(disk.open(), **kw) == (model, 0)


# -- power cuts -----------------------------------------------------------------

def _cut_append_at_every_byte(disk_factory, before, new):
    """A power cut after every possible number of bytes of new's record."""
    kw = dict(max_bytes=64 * 1024, segment_bytes=1024)
    size = record_len(new)
    for k in range(size + 1):
        disk = disk_factory(k)
        q = FlashQueue(disk.open(), **kw)
        for m in before:
            q.put(*m)
        f = Faulty(disk.open())
        q = FlashQueue(f, **kw)
        f.cut_append = k
        with pytest.raises(PowerCut):
            q.put(*new)
        stored = before + ([new] if k == size else [])
        q = FlashQueue(disk.open(), **kw)  # reboot
        assert q.torn == (1 if 0 < k < size else 0), k
        assert len(q) == len(stored), k
        assert contents(disk.open(), **kw)[0] == stored, k
        # the next messages never follow the torn bytes, and survive another reboot
        after = [msg(1000 + k), msg(2000 + k)]
        for m in after:
            q.put(*m)
        q = FlashQueue(disk.open(), **kw)
        got, torn = contents(disk.open(), **kw)
        assert got == stored + after, k
        assert torn == 0, k  # found once, by the boot after the cut


def test_a_power_cut_during_an_append_loses_at_most_that_message(disk, tmp_path):
    def fresh(k):
        return Disk(disk.kind, tmp_path / str(k))

    _cut_append_at_every_byte(fresh, [msg(i) for i in range(5)], msg(99, 80, HOUR))


def test_a_power_cut_during_the_first_append_of_a_segment(disk, tmp_path):
    def fresh(k):
        return Disk(disk.kind, tmp_path / str(k))

    # records of 88 bytes: 11 fit in 1024, so the cut one (the 12th) is the
    # first record of a new segment
    before = [msg(i) for i in range(11)]
    assert sum(record_len(m) for m in before) + record_len(msg(99)) > 1024
    _cut_append_at_every_byte(fresh, before, msg(99))


def test_a_power_cut_during_the_pointer_write_delivers_that_message_again(disk):
    sent = [msg(i) for i in range(6)]
    q = FlashQueue(disk.open())
    for m in sent:
        q.put(*m)
    assert q.peek() == sent[0]
    q.pop()
    f = Faulty(disk.open())
    q = FlashQueue(f)
    assert q.peek() == sent[1]
    f.cut_write = True
    with pytest.raises(PowerCut):
        q.pop()
    q = FlashQueue(disk.open())
    assert drain(q) == sent[1:]  # sent[1] again (its PUBACK's pop did not stick), nothing lost


def test_a_power_cut_before_the_rename_keeps_the_old_pointer(tmp_path, monkeypatch):
    import firmware.storage as fs

    disk = Disk("flash", tmp_path)
    sent = [msg(i) for i in range(6)]
    q = FlashQueue(disk.open())
    for m in sent:
        q.put(*m)
    assert q.peek() == sent[0]
    q.pop()

    def power_cut(a, b):
        raise PowerCut()

    monkeypatch.setattr(fs.os, "rename", power_cut)
    assert q.peek() == sent[1]
    with pytest.raises(PowerCut):
        q.pop()
    monkeypatch.undo()
    assert drain(FlashQueue(disk.open())) == sent[1:]


def test_on_fat_a_cut_between_remove_and_rename_repeats_but_never_loses(tmp_path, monkeypatch):
    # FAT refuses to rename over an existing file: FlashStorage removes the old
    # pointer first. A cut right then leaves no pointer: the queue starts again
    # at the oldest segment's first message.
    import firmware.storage as fs

    disk = Disk("flash", tmp_path)
    sent = [msg(i) for i in range(6)]
    q = FlashQueue(disk.open())
    for m in sent:
        q.put(*m)
    assert q.peek() == sent[0]
    q.pop()
    calls = []

    def fat_rename(a, b):
        calls.append(b)
        if os.path.exists(b):
            raise OSError(17, "exists")
        raise PowerCut()

    monkeypatch.setattr(fs.os, "rename", fat_rename)
    assert q.peek() == sent[1]
    with pytest.raises(PowerCut):
        q.pop()
    monkeypatch.undo()
    assert len(calls) == 2 and not os.path.exists(os.path.join(disk.dir, "qhead"))
    assert drain(FlashQueue(disk.open())) == sent  # sent[0] and sent[1] twice, none lost


# -- damage -----------------------------------------------------------------------

def test_a_damaged_byte_anywhere_in_a_record_skips_that_record_only(disk):
    sent = [msg(i, 40) for i in range(10)]
    start = sum(record_len(m) for m in sent[:4])
    for b in range(record_len(sent[4])):
        st = disk.open()
        for n in st.names(""):
            st.remove(n)
        q = FlashQueue(st)
        for m in sent:
            q.put(*m)
        (name,) = queue_files(st)
        data = bytearray(st.read(name))
        data[start + b] ^= 0xFF
        st.write(name, bytes(data))
        q = FlashQueue(disk.open())
        assert len(q) == 10  # not known to be damaged until it is read
        assert drain(q) == sent[:4] + sent[5:], b
        assert q.torn == 1, b


def test_damage_in_a_middle_segment_is_found_when_delivery_reaches_it(disk):
    kw = dict(max_bytes=64 * 1024, segment_bytes=512)
    sent = [msg(i, 60) for i in range(40)]  # 88-byte records: 5 a segment, 8 segments
    q = FlashQueue(disk.open(), **kw)
    for m in sent:
        q.put(*m)
    st = disk.open()
    names = sorted(queue_files(st), key=lambda n: int(n[2:]))
    assert len(names) == 8
    data = bytearray(st.read(names[3]))
    data[88 * 2 + 30] ^= 0x01  # the third record of the fourth segment: sent[17]
    st.write(names[3], bytes(data))
    q = FlashQueue(disk.open(), **kw)
    assert q.torn == 0  # restore reads only the head and the last segment
    assert drain(q) == sent[:17] + sent[18:]
    assert q.torn == 1


def test_garbage_at_the_end_of_the_last_segment_is_never_appended_after(disk):
    sent = [msg(i) for i in range(3)]
    q = FlashQueue(disk.open())
    for m in sent:
        q.put(*m)
    st = disk.open()
    (name,) = queue_files(st)
    st.append(name, b"\xa5\x00\x40garbage")  # a record header promising more than follows
    q = FlashQueue(disk.open())
    assert q.torn == 1 and len(q) == 3
    q.put(*msg(3))
    assert len(queue_files(disk.open())) == 2  # a new segment
    assert contents(disk.open()) == (sent + [msg(3)], 0)


# -- full -------------------------------------------------------------------------

def test_when_full_the_oldest_are_dropped_and_counted(disk):
    kw = dict(max_bytes=4096, segment_bytes=1024)
    q = FlashQueue(disk.open(), **kw)
    sent = [msg(i, 90) for i in range(100)]  # 118 bytes each: 8 a segment
    for m in sent:
        q.put(*m)
        assert flash_bytes(disk.open()) <= 4096
        assert q.flash_bytes == flash_bytes(disk.open())
    assert q.dropped + len(q) == 100
    assert q.dropped >= 100 - 4096 // 118
    assert q.dropped <= 100 - (4096 - 1024) // 118  # a segment at a time
    kept = sent[q.dropped:]
    assert contents(disk.open(), **kw) == (kept, 0)
    assert drain(q) == kept


def test_dropping_keeps_what_was_not_yet_delivered_after_the_head_moved(disk):
    kw = dict(max_bytes=2048, segment_bytes=1024)
    q = FlashQueue(disk.open(), **kw)
    sent = [msg(i, 90) for i in range(40)]
    for m in sent[:5]:
        q.put(*m)
    for _ in range(3):
        q.peek()
        q.pop()
    for m in sent[5:]:
        q.put(*m)
    assert 3 + q.dropped + len(q) == 40
    assert contents(disk.open(), **kw)[0] == sent[3 + q.dropped:]


def test_pop_removes_only_what_peek_returned(disk):
    kw = dict(max_bytes=2048, segment_bytes=1024)
    q = FlashQueue(disk.open(), **kw)
    sent = [msg(i, 90) for i in range(30)]
    for m in sent[:8]:
        q.put(*m)
    assert q.peek() == sent[0]  # being published...
    for m in sent[8:]:
        q.put(*m)  # ...while the queue fills and drops its oldest segment
    dropped = q.dropped
    assert dropped >= 8
    q.pop()  # the PUBACK for sent[0]: it is gone already, nothing else goes
    assert q.peek() == sent[dropped]
    q.pop()
    assert q.peek() == sent[dropped + 1]
    q.pop()
    q.pop()  # no peek in between: nothing happens
    assert q.peek() == sent[dropped + 2]


def test_fourteen_days_of_hours_fit_in_the_default_queue(disk):
    st = Faulty(disk.open())
    q = FlashQueue(st)
    hours = 0
    while q.dropped == 0:
        q.put(L3, b"3" * 700)  # List 3 JSON (the recorded meters give 470-540 bytes)
        q.put(HOUR, b"h" * 200)
        hours += 1
        if hours == 14 * DAY:
            assert q.dropped == 0 and len(q) == 2 * 14 * DAY
            assert q.flash_bytes <= 384 * 1024
            assert st.appends == 2 * 14 * DAY and st.writes == 0 and st.removes == 0
    # 2 x 955 bytes an hour: the first drop comes after 17.2 days, and a full
    # queue then always keeps the latest 16.4 days
    assert hours > 17 * DAY
    assert flash_bytes(disk.open()) <= 384 * 1024
    dropped = q.dropped
    q = FlashQueue(disk.open())
    assert len(q) == 2 * hours - dropped
    got = drain(q)
    assert got[0] == (L3, b"3" * 700) and len(got) == 2 * hours - dropped


def test_flash_writes_one_append_per_put_and_one_small_write_per_pop(disk):
    st = Faulty(disk.open())
    q = FlashQueue(st)
    for h in range(7 * DAY):  # a week with the broker up: put, PUBACK, pop
        for topic, n in ((L3, 700), (HOUR, 200)):
            q.put(topic, b"x" * n)
            assert q.peek() is not None  # published, PUBACK
            q.pop()
    puts = pops = 2 * 7 * DAY
    assert st.appends == puts
    # each pop: a pointer write, or removing the segment it emptied; and each
    # finished segment is removed once (7 x 24 x 955 bytes = 9.8 segments of 16 KB)
    assert st.writes <= pops
    assert 8 <= st.removes <= 10
    assert st.writes + st.removes <= pops + 10


# -- storage errors ------------------------------------------------------------------

OPS = ["put"] * 9 + ["pop"] * 3 + ["put"] * 6 + ["pop"] * 14 + ["put"] * 3 + ["pop"]


def _run_ops(q, f, sent_ok, maybe, popped):
    i = 0
    for op in OPS:
        if op == "put":
            m = msg(i, 50 + 9 * i)
            i += 1
            try:
                q.put(*m)
                sent_ok.append(m)
            except OSError:
                maybe.append(m)
        else:
            try:
                m = q.peek()
                if m is not None:
                    q.pop()
                    popped.append(m)
            except OSError:
                pass


def test_storage_errors_raise_and_leave_the_queue_consistent(disk, tmp_path):
    kw = dict(max_bytes=64 * 1024, segment_bytes=512)
    clean = Faulty(MemStorage())
    _run_ops(FlashQueue(clean, **kw), clean, [], [], [])
    total = clean.calls
    assert total > 60
    for k in range(1, total + 1):
        d = Disk(disk.kind, tmp_path / str(k))
        f = Faulty(d.open())
        f.fail_at = k
        while True:
            try:
                q = FlashQueue(f, **kw)
                break
            except OSError:
                pass  # the caller counts it and tries again
        sent_ok, maybe, popped = [], [], []
        _run_ops(q, f, sent_ok, maybe, popped)
        assert f.calls >= k
        rebooted, torn = contents(d.open(), **kw)
        left = drain(q)
        assert rebooted == left, k  # RAM and flash agree
        got = [m for m in popped + left if m not in maybe]
        assert got == sent_ok, k  # every stored message once, in order
        assert all(m in sent_ok or m in maybe for m in popped + left), k
        assert torn == 0, k


def test_a_power_cut_before_any_storage_call_loses_nothing_acknowledged(disk, tmp_path):
    kw = dict(max_bytes=64 * 1024, segment_bytes=512)
    clean = Faulty(MemStorage())
    _run_ops(FlashQueue(clean, **kw), clean, [], [], [])
    for k in range(1, clean.calls + 1):
        d = Disk(disk.kind, tmp_path / str(k))
        f = Faulty(d.open())
        f.cut_at = k
        sent_ok, popped = [], []
        try:
            _run_ops(FlashQueue(f, **kw), f, sent_ok, [], popped)
        except PowerCut:
            pass
        got, torn = contents(d.open(), **kw)
        # what was put and not yet popped; the message of a pop the cut
        # interrupted is still the first
        assert got == sent_ok[len(popped):], k
        assert torn == 0, k


# -- both interpreters ---------------------------------------------------------------

FIRMWARE_FILES = [(os.path.join(HERE, "..", "firmware", n), "/lib/firmware/" + n)
                  for n in ("__init__.py", "storage.py")]


def test_the_same_scenario_gives_the_same_transcript_on_micropython_and_cpython(mpy, tmp_path):
    script = os.path.join(HERE, "flashqueue_scenario.py")
    cpy = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True)
    assert cpy.returncode == 0, cpy.stderr.decode()
    mp = mpy(script, args=["/data"], files=FIRMWARE_FILES, heap="4m", timeout=300)
    assert mp.returncode == 0, mp.stderr.decode()
    mp_lines = mp.stdout.decode().splitlines()
    heap = [line for line in mp_lines if line.startswith("heap")]
    mp_lines = [line for line in mp_lines if not line.startswith("heap")]
    lines = cpy.stdout.decode().splitlines()
    assert mp_lines == lines
    flash = [line[6:] for line in lines if line.startswith("flash ")]
    mem = [line[4:] for line in lines if line.startswith("mem ")]
    assert flash == mem and len(flash) == 13
    assert "rebooted: 10 torn 1 han/hanport/list3:L/0123:102" in flash
    assert "14 days of outage: len 672 dropped 0 flash_bytes 327565" in flash
    assert "delivered after reboot 672 left 0 flash_bytes 2865" in flash
    assert "day with broker up: appends 48 writes 48 removes 1 bytes 23400" in flash
    # the heap it costs on MicroPython (printed for the report; bounded here)
    print("\n".join(heap))
    figures = {}
    for line in heap:
        words = line.split()
        figures[words[1]] = [int(w) for w in words if w.isdigit()]
    assert figures["queue"][1] == 672  # messages in it
    assert figures["queue"][0] < 2048  # the queue with 14 days on flash and its head cached
    assert all(n < 4096 for n in figures["allocated"][1:])  # per put/pop/peek, all garbage


IMPORT_COST = r"""
import gc
import sys
import hanport.crc16
import struct


def before():
    global base
    base = gc.mem_alloc()


def load():
    global fq
    fq = __import__(sys.argv[1])


def after():
    print("import", gc.mem_alloc() - base)


MPY_STEPS = [before, load, after]
"""


def test_the_module_costs_little_heap_on_micropython(mpy, tmp_path):
    from test_mpy_cross import _mpy_cross_cmd

    script = tmp_path / "imp.py"
    script.write_text(IMPORT_COST)
    compiled = tmp_path / "fq_compiled.mpy"
    r = subprocess.run(_mpy_cross_cmd() + ["-o", str(compiled),
                                           os.path.join(HERE, "..", "lib", "hanport", "flashqueue.py")],
                       capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    cost = {}
    for how, module, files in (("source", "hanport.flashqueue", ()),
                               ("mpy", "fq_compiled", [(str(compiled), "/lib/fq_compiled.mpy")])):
        p = mpy(script, args=[module], files=files)
        assert p.returncode == 0, p.stderr.decode()
        cost[how] = int(p.stdout.decode().split()[1])
    print("heap for importing flashqueue: from .py %(source)d bytes, from .mpy %(mpy)d bytes" % cost)
    assert cost["mpy"] < 5 * 1024 and cost["source"] < 8 * 1024
