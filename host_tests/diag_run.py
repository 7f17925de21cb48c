"""A diag payload of a stand-in app, and the heap one payload() allocates.

Runs under CPython and the WebAssembly MicroPython (test_diag_words.py compares
the bytes); `node tools/mpy_run.mjs host_tests/diag_run.py` prints them.
"""
import gc
import sys

from hanport import diag


class Obj:
    def __init__(self, **kw):
        for k in kw:
            setattr(self, k, kw[k])


class Box(Obj):
    def __len__(self):
        return 7


def stand_in(language="en", last_frame_s=3590):
    link = Obj(state=lambda: "up", rssi=lambda: -67)
    system = Obj(free_heap=lambda: 31234, largest_free_block=lambda: None)
    session = Obj(state="connected", connects=3, connect_failures=12, disconnects=2,
                  last_error="connection_refused")
    box = Box(durable=Obj(dropped=1, torn=0), replaced=5)
    return Obj(up_s=3600, last_byte_s=3599, last_frame_s=last_frame_s,
               decoder=Obj(errors={"encrypted": 0, "short": 2, "layout": 1}),
               language=language, link=link, system=system, session=session, outbox=box,
               reset_cause="power_on", last_crash=None, bytes_in=123456,
               deframer=Obj(frames=1440, errors={"crc": 3, "length": 1, "overflow": 0}),
               readings=1438, published=1500, sent=1600, source=Obj(overflows=0),
               clock=Obj(ntp_failures=1),
               energy=Obj(counters={"hours": 1, "resets": 0, "gaps": 2}),
               errors={"publish": 1, "frame": 0})


APPS = (stand_in(), stand_in(last_frame_s=None), stand_in("nb", None))


def main():
    for app in APPS:
        diag.payload(app)  # once before measuring: loads what it loads lazily
        gc.collect()
        if sys.implementation.name == "micropython":
            gc.disable()
            before = gc.mem_alloc()
            p = diag.payload(app)
            spent = gc.mem_alloc() - before
            gc.enable()
        else:
            p = diag.payload(app)
            spent = 0
        sys.stdout.write(p.decode() + "\n")
        sys.stderr.write("allocated %d\n" % spent)


if __name__ == "__main__":
    main()
