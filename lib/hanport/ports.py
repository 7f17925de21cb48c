"""The parts the main loop is given from outside.

The loop in hanport.app knows nothing about pins, radios or files. The device
(firmware/) and the PC twin (tools/) each supply objects with these shapes:

ByteSource
    readinto(buf) -> int or None
        Copy waiting bytes into buf, return how many (None or 0: nothing
        waiting). Must not block for more than a few milliseconds.

Clock
    ticks_ms() -> int; ticks_diff(a, b) -> int (a - b, wrap-safe);
    sleep_ms(ms); time() -> int (Unix epoch seconds, 0 while unknown).

Link (the network under MQTT: Wi-Fi on the device, always up on a PC)
    poll() -> bool
        Non-blocking: is the network up? Starts or backs off reconnects itself.
    state() -> str   readable state, e.g. "got_ip", "wrong_password".
    rssi() -> int or None

MqttClient
    connect()
        Open the socket and send CONNECT (the will is given to the
        constructor). Bounded in time. Raises OSError on network failure and
        BrokerRefused(code) when the broker answers with a non-zero code.
    publish(topic: bytes, payload: bytes, retain=False, qos=0)
        Raises OSError when the connection is gone.
    ping()            keepalive; raises OSError when the connection is gone.
    disconnect()      never raises.
    close()           optional: drop the connection at once, no DISCONNECT
                      (the network is gone); never raises. Without it the
                      loop calls disconnect().

Storage (small named files under one directory that survive a reboot)
    Names: letters, digits, ".", "_", "-"; no "/", not starting with "."
    (ValueError otherwise); names ending in ".tmp" are the storage's own.
    read(name) -> bytes or None (None: missing).
    write(name, data: bytes)
        Atomic replace (temporary file + rename): after a power cut the old
        or the new contents, never a mix.
    append(name, data: bytes)
        Adds data at the end, creating the file. Not atomic: a power cut
        during it may leave any prefix of data (a torn tail).
    size(name) -> int          bytes in the file; 0 when missing.
    read_at(name, offset, n) -> bytes
        Up to n bytes from offset: fewer at the end of the file, b"" past it
        or when missing.
    remove(name)               no error when missing.
    names(prefix) -> list of str
        The names starting with prefix, in no particular order.
    Any method may raise OSError when the flash fails or is full; callers
    count it and carry on.

Watchdog
    feed()

System (facts about the machine, for diagnostics)
    free_heap() -> int or None       bytes free in the Python heap
    largest_free_block() -> int or None   largest free block of the system
                                     heap (Wi-Fi, lwIP, TLS allocate there)
    reset_cause() -> str
"""


class BrokerRefused(Exception):
    """The broker refused CONNECT; args[0] is the MQTT return code (5: not authorised)."""

    def code(self):
        return self.args[0] if self.args else None
