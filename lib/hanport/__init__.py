# hanport: portable HAN-port decoding and publishing, shared by MicroPython and CPython.
