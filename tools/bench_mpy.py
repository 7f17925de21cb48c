"""Decoder figures under MicroPython (run by tools/bench.py through tools/mpy_run.mjs).

Prints one "key value" line per figure. Reads hex frames ("label<TAB>hex")
from the file named on the command line.
"""
import gc
import sys
import time

gc.collect()
heap_before = gc.mem_alloc()
from hanport.hdlc import Deframer  # noqa: E402
from hanport.decode import Decoder  # noqa: E402

gc.collect()
print("heap_after_import", gc.mem_alloc() - heap_before)
# decode.py imports each meter layout when it first sees it; with all three:
from hanport import obis_array, kaifa, kamstrup  # noqa: E402,F401

gc.collect()
print("heap_with_all_layouts", gc.mem_alloc() - heap_before)

from binascii import unhexlify  # noqa: E402

frames = {}
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            label, digits = line.split("\t")
            frames[label] = unhexlify(digits)

decoder = Decoder()
last = [None]


def sink(apdu, frame):
    last[0] = decoder.decode(apdu)


deframer = Deframer(sink)
REPEAT = 200

for label in sys.argv[2:]:
    frame = frames[label]
    deframer.feed(frame)  # warm up, and check it decodes
    if last[0] is None:
        print("error", label, decoder.last_error)
        continue
    gc.collect()
    start = time.ticks_ms()
    for _ in range(REPEAT):
        deframer.feed(frame)
    elapsed = time.ticks_diff(time.ticks_ms(), start)
    print("us_per_frame", label, elapsed * 1000 // REPEAT)
    last[0] = None
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(10):
        deframer.feed(frame)
    allocated = gc.mem_alloc() - before
    gc.enable()
    print("bytes_per_frame", label, allocated // 10)


def no_op(apdu, frame):
    pass


def allocated_while_feeding(data, chunk):
    d = Deframer(no_op)
    view = memoryview(data)
    pieces = [view[i:i + chunk] for i in range(0, len(data), chunk)]
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for piece in pieces:
        d.feed(piece)
    allocated = gc.mem_alloc() - before
    gc.enable()
    return allocated, d.frames


stream = b"".join(frames[label] for label in sys.argv[2:]) * 4
whole, count = allocated_while_feeding(stream, len(stream))
single, count1 = allocated_while_feeding(stream, 1)
print("stream_bytes", len(stream))
print("stream_frames", count)
print("deframer_bytes_per_frame", whole // count)
# Feeding one byte at a time: what it allocates beyond handing over frames.
print("deframer_bytes_per_byte_x1000", (single - whole) * 1000 // len(stream))
garbage = bytes(range(256)) * 16
junk, _ = allocated_while_feeding(garbage, 1)
print("deframer_bytes_for_%d_garbage_bytes" % len(garbage), junk)
