# Runs at every boot, after boot.py. The work is in firmware/device.py; this
# file only makes sure that a missing install still leaves the REPL usable.
try:
    import micropython
    micropython.alloc_emergency_exception_buf(100)  # tracebacks from IRQ handlers
except (ImportError, AttributeError):
    pass

try:
    from firmware import device
except Exception as e:  # missing, or a .mpy from another MicroPython release
    print("hanport: firmware not installed properly (%r): run tools/deploy.py --port PORT" % e)
else:
    device.main()
