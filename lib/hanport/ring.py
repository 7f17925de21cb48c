"""A fixed-size byte ring buffer that never allocates after construction.

The UART interrupt handler fills it and the main loop empties it, so both
directions copy byte by byte with index loops: in MicroPython a slice makes a
new object (about 48 bytes) and a soft IRQ handler must not feed the garbage
collector. When full, the newest bytes are dropped and counted: the bytes
already waiting belong to a frame that may still complete.
"""


class Ring:
    def __init__(self, capacity):
        self._buf = bytearray(capacity)
        self._cap = capacity
        self._head = 0  # next index to write
        self._len = 0
        self.overflows = 0  # bytes dropped because the ring was full

    def __len__(self):
        return self._len

    def room(self):
        """How many bytes put_from() would take now without dropping any."""
        return self._cap - self._len

    def put_from(self, src, n):
        """Copy src[0:n] in; return how many fitted."""
        room = self._cap - self._len
        if n > room:
            self.overflows += n - room
            n = room
        buf = self._buf
        cap = self._cap
        h = self._head
        for i in range(n):
            buf[h] = src[i]
            h += 1
            if h == cap:
                h = 0
        self._head = h
        self._len += n
        return n

    def readinto(self, buf):
        """Move up to len(buf) bytes out, oldest first; return the count (0 when empty)."""
        n = len(buf)
        if n > self._len:
            n = self._len
        ring = self._buf
        cap = self._cap
        t = self._head - self._len
        if t < 0:
            t += cap
        for i in range(n):
            buf[i] = ring[t]
            t += 1
            if t == cap:
                t = 0
        self._len -= n
        return n
