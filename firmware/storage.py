"""Storage (see hanport.ports): small named files in flash under one directory.

Uses only `os` and `open`, so the same class serves the ESP32 (littlefs), the
WebAssembly MicroPython (Emscripten's file system) and CPython (the PC twin's
--state-dir, through pc.parts).

write() goes to a temporary file that is then renamed over the old one, so a
power cut (the HAN port can drop the dongle's supply at any time) leaves the old
or the new contents, never half of each. append() has no such guarantee: a cut
during it can leave a torn tail, which the reader (hanport.flashqueue) detects
by its checksum.
"""
import os

TMP = ".tmp"  # suffix of write()'s temporary files: not a valid name, never listed


class FlashStorage:
    def __init__(self, root="/data"):
        self._root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # already there (errno differs between ports)

    def _path(self, name):
        if not name or "/" in name or name.startswith(".") or name.endswith(TMP):
            raise ValueError("bad storage name")
        return self._root + "/" + name

    def read(self, name):
        try:
            f = open(self._path(name), "rb")
        except OSError:
            # Not there. (Not checked by errno: ENOENT's value differs between
            # ports, and MicroPython's WebAssembly build even disagrees with itself.)
            return None
        with f:
            return f.read()

    def write(self, name, data):
        path = self._path(name)
        tmp = path + TMP
        with open(tmp, "wb") as f:
            _write_all(f, data)
        try:
            # littlefs (the ESP32's default file system) and POSIX replace the
            # target in one step: a power cut leaves the old or the new file.
            os.rename(tmp, path)
        except OSError:
            # FAT (a flash partition labelled "ffat") refuses to rename over an
            # existing file. Between these two calls the old contents are gone
            # and the new ones are still under the .tmp name: a cut there makes
            # read() return None. hanport.flashqueue survives that (it then
            # delivers some messages twice); the rest treat None as "never saved".
            os.remove(path)
            os.rename(tmp, path)

    def append(self, name, data):
        with open(self._path(name), "ab") as f:
            _write_all(f, data)

    def size(self, name):
        try:
            return os.stat(self._path(name))[6]  # st_size, on every port
        except OSError:
            return 0

    def read_at(self, name, offset, n):
        try:
            f = open(self._path(name), "rb")
        except OSError:
            return b""
        with f:
            f.seek(offset)
            return f.read(n)

    def remove(self, name):
        path = self._path(name)
        try:
            os.remove(path)
        except OSError:
            if self.read_at(name, 0, 1):  # still there: a real failure, not "missing"
                raise

    def names(self, prefix):
        return [n for n in os.listdir(self._root)
                if n.startswith(prefix) and not n.startswith(".") and not n.endswith(TMP)]


def _write_all(f, data):
    n = f.write(data)
    if n is not None and n != len(data):  # a full file system writes short on some ports
        raise OSError(28, "short write")  # ENOSPC, the same number everywhere
