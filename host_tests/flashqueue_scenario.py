"""One FlashQueue scenario for both interpreters: CPython and the WebAssembly MicroPython.

    python host_tests/flashqueue_scenario.py DIR     (CPython; DIR: an empty directory)
    mpy_run host_tests/flashqueue_scenario.py /data  (with firmware/storage.py at /lib/firmware/)

Runs the same steps on FlashStorage(DIR) and on MemStorage and prints a
transcript per storage (the test compares them across storages and
interpreters), then the flash operation counts. Under MicroPython it also
prints the heap the module costs (lines starting with "heap").
"""
import sys

if sys.implementation.name != "micropython":
    import os

    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for _p in (os.path.join(_root, "lib"), _root):
        if _p not in sys.path:
            sys.path.insert(0, _p)

from firmware.storage import FlashStorage  # noqa: E402
from hanport.flashqueue import FlashQueue  # noqa: E402
from pc.memstorage import MemStorage  # noqa: E402

L3 = b"han/hanport/list3"
HOUR = b"han/hanport/hour"


class PowerCut(Exception):
    """The supply dropping: not an OSError, so the queue cannot tidy up after it."""


class Counting:
    """Storage wrapper: counts the calls that write flash; can cut an append short."""

    def __init__(self, base):
        self.base = base
        self.appends = self.writes = self.removes = self.bytes = 0
        self.cut_append = -1  # >= 0: the next append keeps this many bytes, then the power goes

    def read(self, name):
        return self.base.read(name)

    def write(self, name, data):
        self.writes += 1
        self.bytes += len(data)
        self.base.write(name, data)

    def append(self, name, data):
        self.appends += 1
        k = self.cut_append
        if k >= 0:
            self.cut_append = -1
            self.base.append(name, data[:k])
            raise PowerCut()
        self.bytes += len(data)
        self.base.append(name, data)

    def size(self, name):
        return self.base.size(name)

    def read_at(self, name, offset, n):
        return self.base.read_at(name, offset, n)

    def remove(self, name):
        self.removes += 1
        self.base.remove(name)

    def names(self, prefix):
        return self.base.names(prefix)


def payload(kind, i, n):
    p = bytearray(n)
    for k in range(n):
        p[k] = 32 + (i * 7 + k) % 90
    p[0] = ord(kind)
    return bytes(p)


def show(m):
    if m is None:
        return "None"
    return m[0].decode() + ":" + m[1][:6].decode() + ":" + str(len(m[1]))


def drain(q, out):
    got = []
    while True:
        m = q.peek()
        if m is None:
            break
        got.append(show(m))
        q.pop()
    out.append("drained " + str(len(got)) + " " + " ".join(got[:3]) + " .. " + " ".join(got[-2:])
               + " torn " + str(q.torn))


def scenario(storage, out):
    """storage: a fresh, empty Storage. Appends transcript lines to out."""
    st = Counting(storage)
    small = (8192, 1024)  # max_bytes, segment_bytes: drops and segment changes happen quickly
    q = FlashQueue(st, small[0], small[1])
    out.append("empty " + str(len(q)) + " " + show(q.peek()))
    for i in range(12):
        q.put(L3, payload("L", i, 100 + i))
    for _ in range(2):
        q.peek()  # published, acknowledged:
        q.pop()
    out.append("after 12 puts, 2 pops: " + str(len(q)) + " " + show(q.peek()))
    q = FlashQueue(st, small[0], small[1])  # reboot
    out.append("rebooted: " + str(len(q)) + " " + show(q.peek()))
    # a power cut in the middle of an append
    st.cut_append = 37
    try:
        q.put(HOUR, payload("H", 99, 150))
    except PowerCut:
        out.append("power cut during append")
    q = FlashQueue(st, small[0], small[1])
    out.append("rebooted: " + str(len(q)) + " torn " + str(q.torn) + " " + show(q.peek()))
    q.put(HOUR, payload("H", 100, 150))
    q = FlashQueue(st, small[0], small[1])
    out.append("one more put, rebooted: " + str(len(q)))
    # damage inside a segment: one byte of the third message left
    name = sorted(st.names("q."), key=lambda n: int(n[2:]))[0]
    data = bytearray(st.read(name))
    data[len(data) // 2] ^= 0x55
    st.base.write(name, data)  # the damage is not a queue write: not counted
    q = FlashQueue(st, small[0], small[1])
    drain(q, out)
    # full: the oldest go, counted
    for i in range(200):
        q.put(L3, payload("F", i, 90))
    out.append("200 puts into 8 KB: len " + str(len(q)) + " dropped " + str(q.dropped)
               + " flash_bytes " + str(q.flash_bytes))
    q = FlashQueue(st, small[0], small[1])
    drain(q, out)
    out.append("flash ops: appends " + str(st.appends) + " writes " + str(st.writes)
               + " removes " + str(st.removes))


def days(storage, out, outage_days=14):
    """Default sizes: an hourly List 3 (700 bytes) and hour message (200 bytes).
    First a day with the broker up (put, then pop after the PUBACK), then an
    outage of outage_days, then delivery."""
    st = Counting(storage)
    q = FlashQueue(st)
    for h in range(24):
        q.put(L3, payload("L", h, 700))
        q.put(HOUR, payload("H", h, 200))
        while q.peek() is not None:
            q.pop()
    out.append("day with broker up: appends " + str(st.appends) + " writes " + str(st.writes)
               + " removes " + str(st.removes) + " bytes " + str(st.bytes))
    for h in range(outage_days * 24):
        q.put(L3, payload("L", h, 700))
        q.put(HOUR, payload("H", h, 200))
    out.append(str(outage_days) + " days of outage: len " + str(len(q)) + " dropped "
               + str(q.dropped) + " flash_bytes " + str(q.flash_bytes))
    q = FlashQueue(st)  # a reboot before the broker comes back
    n = 0
    while q.peek() is not None:
        q.pop()
        n += 1
    out.append("delivered after reboot " + str(n) + " left " + str(len(q)) + " flash_bytes "
               + str(q.flash_bytes))


def main(root):
    FlashStorage(root)  # creates root: FlashStorage makes one directory level
    for kind in ("flash", "mem"):
        out = []
        scenario(FlashStorage(root + "/a") if kind == "flash" else MemStorage(), out)
        days(FlashStorage(root + "/b") if kind == "flash" else MemStorage(), out)
        for line in out:
            print(kind + " " + line)


# -- heap, under MicroPython (each step runs after a garbage collection) ------

def _heap_fill():
    # 14 days on flash, before the queue under test exists
    q = FlashQueue(FlashStorage("/heap"))
    for h in range(14 * 24):
        q.put(L3, payload("L", h, 700))
        q.put(HOUR, payload("H", h, 200))


def _heap_base():
    import gc

    global _base, _store
    _store = FlashStorage("/heap")
    _base = gc.mem_alloc()


def _heap_make():
    global _q
    _q = FlashQueue(_store)
    _q.peek()


def _heap_resident():
    import gc

    print("heap queue", gc.mem_alloc() - _base, "bytes, holding", len(_q), "messages on flash, head cached")
    p = payload("L", 1, 700)
    gc.disable()
    a = gc.mem_alloc()
    _q.put(L3, p)
    b = gc.mem_alloc()
    _q.pop()
    c = gc.mem_alloc()
    _q.peek()
    d = gc.mem_alloc()
    gc.enable()
    print("heap allocated by put(700 B)", b - a, "pop", c - b, "peek", d - c)


if sys.implementation.name == "micropython":
    MPY_STEPS = [_heap_fill, _heap_base, _heap_make, _heap_resident]

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/data")
