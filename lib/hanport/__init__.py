# hanport: portable HAN-port decoding and publishing, shared by MicroPython and CPython.

VERSION = "0.3.0"  # the dongle's firmware version: diag, Home Assistant's device page
