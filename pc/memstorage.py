"""Storage (see hanport.ports) in RAM: the PC twin without --state-dir, and the tests.

Portable (CPython and MicroPython): host_tests/loop_fakes.py re-exports it for
loops run under the WebAssembly MicroPython. Files on disk or flash are
firmware.storage.FlashStorage, which runs on both as well.
"""


class MemStorage:
    def __init__(self):
        self.blobs = {}  # name -> bytearray

    def read(self, name):
        b = self.blobs.get(_checked(name))
        return None if b is None else bytes(b)

    def write(self, name, data):
        self.blobs[_checked(name)] = bytearray(data)

    def append(self, name, data):
        b = self.blobs.get(_checked(name))
        if b is None:
            self.blobs[name] = bytearray(data)
        else:
            b.extend(data)

    def size(self, name):
        b = self.blobs.get(name)
        return 0 if b is None else len(b)

    def read_at(self, name, offset, n):
        b = self.blobs.get(name)
        return b"" if b is None else bytes(b[offset:offset + n])

    def remove(self, name):
        self.blobs.pop(name, None)

    def names(self, prefix):
        return [n for n in self.blobs if n.startswith(prefix)]


def _checked(name):
    # the same rule as FlashStorage, so a name that works in tests works on flash
    if not name or "/" in name or name.startswith(".") or name.endswith(".tmp"):
        raise ValueError("bad storage name")
    return name
