"""Storage (see hanport.ports): small named blobs in flash files under one directory.

A write goes to a temporary file that is then renamed over the old one, so a
power cut (the HAN port can drop the dongle's supply at any time) leaves
either the old or the new contents, never half of each.
"""
import os


class FlashStorage:
    def __init__(self, root="/data"):
        self._root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # already there (errno differs between ports)

    def _path(self, name):
        if not name or "/" in name or name.startswith("."):
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
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.rename(tmp, path)  # littlefs replaces the target atomically
        except OSError:
            # FAT refuses to rename over an existing file.
            os.remove(path)
            os.rename(tmp, path)

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass
