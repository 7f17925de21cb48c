"""Decoder figures under MicroPython (run by tools/bench.py through tools/mpy_run.mjs).

    node tools/mpy_run.mjs --file CORPUS:/corpus.hex tools/bench_mpy.py /corpus.hex LABEL...

Prints one "name value" line per figure. Reads hex frames ("label<TAB>hex") from
the file named first and measures the frames labelled after it.

The WebAssembly port collects garbage only between top-level calls, so the
heap figures come from MPY_STEPS, which the runner calls one by one with a
collection before each. Allocation is counted with the collector disabled.
"""
import gc
import sys
import time

REPEAT = 200  # frames per timing: the port's clock ticks in milliseconds
base = [0]


def mark():
    base[0] = gc.mem_alloc()


def import_decoder():
    from hanport import hdlc, decode  # noqa: F401


def import_layouts():
    # decode.py imports each meter layout when it first sees it; here all three.
    from hanport import obis_array, kaifa, kamstrup  # noqa: F401


def heap(name):
    def report():
        print(name, gc.mem_alloc() - base[0])

    return report


def allocated(run):
    gc.disable()
    before = gc.mem_alloc()
    result = run()
    spent = gc.mem_alloc() - before
    gc.enable()
    return spent, result


def load_frames(path):
    from pc.capture import read_hex

    return dict(read_hex(path))


def per_frame():
    from hanport.hdlc import Deframer
    from hanport.decode import Decoder

    frames = load_frames(sys.argv[1])
    decoder = Decoder()
    last = [None]

    def sink(apdu, frame):
        last[0] = decoder.decode(apdu)

    deframer = Deframer(sink)
    for label in sys.argv[2:]:
        frame = frames[label]
        deframer.feed(frame)  # warm up, and check that it decodes
        if last[0] is None:
            print("error", label, decoder.last_error)
            continue
        start = time.ticks_ms()
        for _ in range(REPEAT):
            deframer.feed(frame)
        print("us_per_frame", label, time.ticks_diff(time.ticks_ms(), start) * 1000 // REPEAT)

        def ten():
            for _ in range(10):
                deframer.feed(frame)

        print("bytes_per_frame", label, allocated(ten)[0] // 10)


def deframer_only():
    from hanport.hdlc import Deframer

    frames = load_frames(sys.argv[1])

    def no_op(apdu, frame):
        pass

    def feed_in(data, chunk):
        d = Deframer(no_op)
        view = memoryview(data)
        pieces = [view[i:i + chunk] for i in range(0, len(data), chunk)]

        def run():
            for piece in pieces:
                d.feed(piece)
            return d.frames

        return allocated(run)

    stream = b"".join(frames[label] for label in sys.argv[2:]) * 4
    whole, count = feed_in(stream, len(stream))
    single, _ = feed_in(stream, 1)
    print("stream_bytes", len(stream))
    print("stream_frames", count)
    # Handing a frame over makes two memoryviews; nothing else is allocated.
    print("deframer_bytes_per_frame", whole // count)
    # Fed one byte at a time: what it allocates beyond handing frames over.
    print("deframer_bytes_per_byte_x1000", (single - whole) * 1000 // len(stream))
    garbage = bytes(range(256)) * 16
    print("deframer_bytes_for_%d_garbage_bytes" % len(garbage), feed_in(garbage, 1)[0])


MPY_STEPS = [
    mark,
    import_decoder,
    heap("heap_after_import"),
    import_layouts,
    heap("heap_with_all_layouts"),
    per_frame,
    deframer_only,
]
