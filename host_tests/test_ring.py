"""The byte ring between the UART interrupt and the loop, on CPython and MicroPython.

Under MicroPython (the official WebAssembly build) the tests also measure
that filling the ring, and the whole UART IRQ handler path, allocate nothing:
a soft IRQ handler that feeds the garbage collector stalls the loop.
"""
from hypothesis import given, strategies as st

from hanport.ring import Ring


def drain(ring, size=7):
    out = bytearray()
    buf = bytearray(size)
    while True:
        n = ring.readinto(buf)
        if not n:
            return bytes(out)
        out += buf[:n]


def test_empty_ring_reads_zero():
    r = Ring(8)
    assert r.readinto(bytearray(4)) == 0
    assert len(r) == 0


def test_byte_by_byte_in_and_out():
    r = Ring(4)
    one = bytearray(1)
    for b in b"HAN port":
        assert r.put_from(bytes([b]), 1) == 1
        assert r.readinto(one) == 1
        assert one[0] == b
    assert len(r) == 0 and r.overflows == 0


def test_wrap_around_keeps_order():
    r = Ring(5)
    r.put_from(b"abc", 3)
    assert drain(r, 2) == b"abc"
    r.put_from(b"defgh", 5)  # starts at index 3, wraps after two bytes
    assert len(r) == 5
    assert drain(r, 3) == b"defgh"


def test_put_from_copies_only_n_bytes():
    r = Ring(8)
    r.put_from(bytearray(b"0123456789"), 3)
    assert drain(r) == b"012"


def test_overflow_drops_the_newest_bytes_and_counts_them():
    r = Ring(4)
    assert r.put_from(b"abc", 3) == 3
    assert r.put_from(b"defg", 4) == 1
    assert r.overflows == 3
    assert drain(r) == b"abcd"
    r.put_from(b"xyz", 3)
    assert r.overflows == 3  # only dropped bytes count
    assert drain(r) == b"xyz"


def test_readinto_a_memoryview():
    r = Ring(8)
    r.put_from(b"hdlc", 4)
    buf = bytearray(8)
    assert r.readinto(memoryview(buf)[2:5]) == 3
    assert buf[2:5] == b"hdl"


@given(st.lists(st.one_of(st.binary(max_size=20), st.integers(0, 20)), max_size=60))
def test_ring_behaves_like_a_bounded_fifo(ops):
    cap = 16
    r = Ring(cap)
    model = bytearray()
    dropped = 0
    for op in ops:
        if isinstance(op, bytes):
            keep = min(len(op), cap - len(model))
            dropped += len(op) - keep
            model += op[:keep]
            assert r.put_from(op, len(op)) == keep
        else:
            buf = bytearray(op)
            n = r.readinto(buf)
            assert bytes(buf[:n]) == bytes(model[:n])
            del model[:n]
        assert len(r) == len(model)
    assert r.overflows == dropped


# -- the same under MicroPython --------------------------------------------

def run_script(mpy, tmp_path, text, files=()):
    script = tmp_path / "script.py"
    script.write_text(text)
    p = mpy(script, files=files)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    return out


# Allocation under MicroPython: collection off, gc.mem_alloc() around the call.
MEASURE = r"""
def measure(f, *a):
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    f(*a)
    used = gc.mem_alloc() - before
    gc.enable()
    return used
"""

RING_SCRIPT = r"""
import gc
from hanport.ring import Ring

""" + MEASURE + r"""
r = Ring(8)
one = bytearray(1)
for b in b"abcdefghijk":
    r.put_from(bytes([b]), 1)
    assert r.readinto(one) == 1 and one[0] == b
print("bytewise ok")

r.put_from(b"123456", 6)
out = bytearray(8)
n = r.readinto(out)
assert bytes(out[:n]) == b"123456", out
print("wrap ok")

r.put_from(b"ABCDEFGHIJ", 10)
assert r.overflows == 2 and len(r) == 8, (r.overflows, len(r))
n = r.readinto(out)
assert bytes(out[:n]) == b"ABCDEFGH"
print("overflow ok")

big = Ring(4096)
src = bytearray(range(256))
dst = bytearray(256)
def fill():
    for _ in range(40):  # 10 kB through a 4 kB ring: wraps and overflows
        big.put_from(src, 256)
        big.readinto(dst)
        big.put_from(src, 200)
print("put_from alloc", measure(fill))
def empty():
    while big.readinto(dst):
        pass
print("readinto alloc", measure(empty))
"""


def test_ring_under_micropython(mpy, tmp_path):
    out = run_script(mpy, tmp_path, RING_SCRIPT)
    for line in ("bytewise ok", "wrap ok", "overflow ok", "put_from alloc 0", "readinto alloc 0"):
        assert line in out, out


UART_SCRIPT = r"""
import gc, sys

class FakeUART:
    # The ESP32 UART as the source uses it; readinto hands out scripted chunks
    # by index loops so that the fake itself allocates nothing. Like the
    # driver it gives at most nbytes and keeps the rest of a chunk buffered.
    IRQ_RXIDLE = 4
    INV_RX = 1
    def __init__(self, uart_id, **kw):
        self.kw = kw
        self.chunks = []
        self.pos = 0  # bytes of chunks[0] already read
        self.fail = False
    def irq(self, handler, trigger=0):
        self.handler = handler
        self.trigger = trigger
    def readinto(self, buf, nbytes=-1):
        if self.fail:
            raise OSError(5)
        if not self.chunks:
            return None
        c = self.chunks[0]
        pos = self.pos
        n = len(c) - pos
        if nbytes < 0:
            nbytes = len(buf)
        if n > nbytes:
            n = nbytes
        for i in range(n):
            buf[i] = c[pos + i]
        pos += n
        if pos == len(c):
            self.chunks.pop(0)
            pos = 0
        self.pos = pos
        return n
    def any(self):
        n = -self.pos
        for c in self.chunks:
            n += len(c)
        return n

class FakePin:
    IN = 1
    def __init__(self, n, mode=None):
        self.n = n
        self.mode = mode

class FakeMachine:
    UART = FakeUART
    Pin = FakePin
sys.modules["machine"] = FakeMachine

from firmware.uart_source import UartSource

""" + MEASURE + r"""
s = UartSource(2, rx=16, tx=17, parity="E")
u = s._uart
assert u.kw["parity"] == 0 and u.kw["timeout"] == 0 and u.kw["rxbuf"] >= 4096, u.kw
# The TX pin is handed back to GPIO as an input: the HAN port is never driven.
assert s.tx_pin.n == 17 and s.tx_pin.mode == FakePin.IN
assert u.trigger == FakeUART.IRQ_RXIDLE
assert UartSource(2, parity="N")._uart.kw["parity"] is None
assert UartSource(2, parity="O", invert=True)._uart.kw["invert"] == FakeUART.INV_RX

frame = bytearray(range(200))
u.chunks = [frame, frame, frame[:37]]  # more than one scratch buffer full
handler = u.handler
print("handler alloc", measure(handler, u))
assert len(s._ring) == 437 and s.irq_errors == 0, len(s._ring)

out = bytearray(512)
n = s.readinto(out)
assert n == 437 and out[:200] == frame and out[400:437] == frame[:37]
print("order ok")

u.fail = True
handler(u)
handler(u)
assert s.irq_errors == 2
u.fail = False
print("errors counted", s.irq_errors)

# The loop reads the UART itself too, for IRQs lost from a full scheduler queue.
u.chunks = [b"late"]
n = s.readinto(out)
assert bytes(out[:n]) == b"late"
print("loop drains ok")

# While the loop is inside readinto, a handler that runs in between stays out.
s._busy = True
u.chunks = [b"xy"]
handler(u)
assert len(s._ring) == 0 and u.chunks == [b"xy"]
s._busy = False
print("busy ok")
"""


# A full ring leaves the rest in the driver's buffer (nothing dropped), and the
# handler still allocates nothing, whether the ring is full or fills up.
UART_FULL_SCRIPT = UART_SCRIPT[:UART_SCRIPT.index("s = UartSource(")] + r"""
s = UartSource(2, rx=16, tx=17, parity="E", rxbuf=400, ring_size=300)
u = s._uart
frame = bytearray(range(200))
u.chunks = [frame, frame, frame]  # 600 bytes for a ring of 300
handler = u.handler
print("fill alloc", measure(handler, u))
assert len(s._ring) == 300 and s._ring.overflows == 0, (len(s._ring), s._ring.overflows)
assert u.any() == 300, u.any()  # the rest waits in the driver
print("full alloc", measure(handler, u))
# The driver's buffer (rxbuf 400) is full too: one episode of loss, counted once.
assert u.any() == 300 and s.overflows == 1, (u.any(), s.overflows)
out = bytearray(1000)
got = bytearray()
for _ in range(3):
    n = s.readinto(out)
    got.extend(out[:n])
assert bytes(got) == bytes(frame) * 3, len(got)
assert s._ring.overflows == 0 and u.any() == 0
print("nothing lost", len(got), s.overflows)
u.chunks = [frame, frame, frame]  # a second stall: counted again
handler(u)
while s.readinto(out):
    pass
print("episodes", s.overflows)
"""


def test_uart_full_ring_leaves_bytes_in_the_driver_under_micropython(mpy, tmp_path):
    out = run_script(mpy, tmp_path, UART_FULL_SCRIPT, files=[
        ("firmware/__init__.py", "/lib/firmware/__init__.py"),
        ("firmware/uart_source.py", "/lib/firmware/uart_source.py"),
    ])
    for line in ("fill alloc 0", "full alloc 0", "nothing lost 600 1", "episodes 2"):
        assert line in out, out


def test_ring_room_is_what_fits():
    r = Ring(5)
    assert r.room() == 5
    r.put_from(b"abc", 3)
    assert r.room() == 2
    r.readinto(bytearray(1))
    assert r.room() == 3
    r.put_from(b"defgh", 5)
    assert r.room() == 0 and r.overflows == 2


def test_uart_irq_handler_under_micropython(mpy, tmp_path):
    out = run_script(mpy, tmp_path, UART_SCRIPT, files=[
        ("firmware/__init__.py", "/lib/firmware/__init__.py"),
        ("firmware/uart_source.py", "/lib/firmware/uart_source.py"),
    ])
    for line in ("handler alloc 0", "order ok", "errors counted 2", "loop drains ok", "busy ok"):
        assert line in out, out
