"""MQTT 3.1.1 client, the same on the ESP32 (MicroPython) and the PC (CPython).

One deadline per call: connect (TCP connect, CONNECT, CONNACK), publish (all
writes, and the PUBACK for QoS 1), subscribe (SUBACK), ping and disconnect each
end within timeout_ms in total, however the socket behaves. The socket is
non-blocking; every wait is a poll for the time left. On a timeout or any
socket error the socket is closed and OSError raised (ETIMEDOUT on a timeout):
the caller connects again with a new session.
Not bounded: the DNS lookup in connect() (getaddrinfo blocks in C for as long
as the resolver takes). A literal IP address is parsed without a query.

publish(qos=1) returns only after the broker's PUBACK for that packet. Clean
sessions: nothing is resent after a reconnect, by us or the broker, so the
caller resends what was not acknowledged (a subscriber may see it twice).
Strings are counted in bytes (str is sent as UTF-8); anything over 65535 bytes
is refused with ValueError, never sent as a malformed packet.
"""
import errno
import select
import socket

from hanport.ports import BrokerRefused

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic_ns

    def ticks_ms():
        return monotonic_ns() // 1000000

    def ticks_diff(a, b):
        return a - b

# lwIP reports EINPROGRESS for a write right after a non-blocking connect.
_AGAIN = (errno.EAGAIN, errno.EINPROGRESS)
KEEP = 4  # incoming messages kept for poll() while a call waits: the newest
MAX_IN = 1024  # a bigger incoming packet is read and dropped


def _b(s):
    """s as bytes (a str as UTF-8); over 65535 bytes is a ValueError."""
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 65535:
        raise ValueError("MQTT field over 65535 bytes")
    return s


def _field(s):
    s = _b(s)
    return len(s).to_bytes(2, "big") + s


def _head(buf, kind, n):
    """Fixed header (type, remaining length n) into buf; returns its length."""
    buf[0] = kind
    i = 1
    while True:
        buf[i] = n & 0x7F | (0x80 if n > 0x7F else 0)
        n >>= 7
        i += 1
        if not n:
            return i


def connect_packet(client_id, user, password, keepalive_s, will_topic, will_payload):
    """CONNECT: clean session; the will retained with QoS 1; a user always has
    a password field (empty when none)."""
    if not 0 <= keepalive_s <= 65535:
        raise ValueError("keepalive")
    flags = 2
    p = _field(client_id)
    if will_topic:
        flags |= 0x2C
        p += _field(will_topic) + _field(will_payload or b"")
    if user:
        flags |= 0xC0
        p += _field(user) + _field(password or b"")
    p = b"\x00\x04MQTT\x04" + bytes((flags,)) + keepalive_s.to_bytes(2, "big") + p
    h = bytearray(5)
    return bytes(h[:_head(h, 0x10, len(p))]) + p


class Client:
    def __init__(self, client_id, host, port, user, password, keepalive_s,
                 will_topic, will_payload, timeout_ms=10000):
        self.host = host
        self.port = port or 1883
        self.timeout_ms = timeout_ms
        # Built once: the password lives only inside these bytes.
        self._conn = connect_packet(client_id, user, password, keepalive_s or 0,
                                    will_topic, will_payload)
        self._buf = bytearray(64)  # PUBLISH headers
        self.s = None
        self._pid = 0
        self._in = []  # (topic, payload) received, for poll()

    # -- the calls -----------------------------------------------------

    def connect(self):
        self._close()
        ai = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0]  # DNS
        self.s = s = socket.socket(ai[0], socket.SOCK_STREAM)
        self._p = select.poll()
        self._p.register(s, select.POLLIN)
        self._ping_t = None
        self._in = []
        self._run(self._connect, ai[-1])

    def publish(self, topic, payload, retain=False, qos=0):
        topic, payload = _b(topic), _b(payload)
        if not topic or qos not in (0, 1):
            raise ValueError("topic or qos")
        self._run(self._publish, topic, payload, retain, qos)

    def subscribe(self, topic, qos=0):
        """Returns the granted QoS (0x80: refused by the broker)."""
        t = _field(topic)
        if len(t) < 3 or qos not in (0, 1):
            raise ValueError("topic or qos")
        return self._run(self._subscribe, t, qos)

    def poll(self):
        """One message received (topic, payload) or None. Reads what has arrived
        (a packet cut in the middle is completed within timeout_ms)."""
        self._run(self._drain)
        return self._in.pop(0) if self._in else None

    def ping(self):
        self._run(self._ping)

    def disconnect(self):
        if self.s is None:
            return
        self._t0 = ticks_ms()
        try:
            self._write(b"\xe0\x00")
            # Read to the broker's close: closing a socket with unread input
            # sends a reset, and the broker then publishes the will.
            while self._read(256, True):
                pass
        except Exception:
            pass
        self._close()

    def close(self):
        """Drop the connection at once, without DISCONNECT: for when the network
        is gone (disconnect() would wait its deadline for a reply that cannot
        come). The broker publishes the will. Never raises."""
        self._close()

    # -- inside a call -------------------------------------------------

    def _run(self, f, *args):
        if self.s is None:
            raise OSError(errno.ENOTCONN)
        self._t0 = ticks_ms()
        try:
            return f(*args)
        except BaseException:
            self._close()
            raise

    def _close(self):
        s, self.s = self.s, None
        if s is not None:
            try:
                s.close()
            except Exception:
                pass

    def _connect(self, addr):
        s = self.s
        s.setblocking(False)
        try:  # a PUBLISH is two writes: Nagle would hold the second for an ACK
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:
            pass  # not on every port or release: only latency
        try:
            s.connect(addr)
        except OSError as e:
            if e.args[0] not in _AGAIN:
                raise
        self._write(self._conn)
        h, b = self._packet()
        if h != 0x20 or not b or len(b) != 2:
            raise OSError(errno.EIO)
        if b[1]:
            raise BrokerRefused(b[1])

    def _publish(self, t, p, retain, qos):
        self._drain()  # notices a broker that has closed the connection
        buf = self._buf
        n = len(t) + 9
        if len(buf) < n:
            buf = self._buf = bytearray(n)
        i = _head(buf, 0x30 | qos << 1 | (1 if retain else 0), len(t) + len(p) + 2 + 2 * qos)
        buf[i] = len(t) >> 8
        buf[i + 1] = len(t) & 0xFF
        i += 2
        buf[i:i + len(t)] = t
        i += len(t)
        if qos:
            pid = self._next_pid()
            buf[i] = pid >> 8
            buf[i + 1] = pid & 0xFF
            i += 2
        self._write(memoryview(buf)[:i])
        self._write(p)
        if qos:
            self._ack(0x40, pid)

    def _subscribe(self, t, qos):
        pid = self._next_pid()
        h = bytearray(7)
        n = _head(h, 0x82, len(t) + 3)
        h[n] = pid >> 8
        h[n + 1] = pid & 0xFF
        self._write(bytes(h[:n + 2]) + t + bytes((qos,)))
        return self._ack(0x90, pid)[2]

    def _ping(self):
        self._drain()
        if self._ping_t is None:
            self._write(b"\xc0\x00")
            self._ping_t = ticks_ms()

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _left(self):
        return self.timeout_ms - ticks_diff(ticks_ms(), self._t0)

    def _wait(self, ev):
        left = self._left()
        if left <= 0:
            raise OSError(errno.ETIMEDOUT)
        self._p.modify(self.s, ev)
        self._p.poll(left)

    def _write(self, data):
        mv = memoryview(data)
        i = 0
        while i < len(mv):
            try:
                i += self.s.send(mv[i:])
            except OSError as e:
                if e.args[0] not in _AGAIN:
                    raise
                self._wait(select.POLLOUT)

    def _read(self, n, eof=False):
        """Up to n bytes, waiting for at least one; b"" at the broker's close
        when eof, else that is OSError(ECONNRESET)."""
        while True:
            try:
                d = self.s.recv(n)
            except OSError as e:
                if e.args[0] not in _AGAIN:
                    raise
                self._wait(select.POLLIN)
                continue
            if d or eof:
                return d
            raise OSError(errno.ECONNRESET)

    def _exact(self, n):
        b = b""
        while len(b) < n:
            b += self._read(n - len(b))
        return b

    def _packet(self):
        """(first byte, body) of the next packet; body None when too big to keep."""
        h = self._exact(1)[0]
        n = sh = 0
        while True:
            c = self._exact(1)[0]
            n |= (c & 0x7F) << sh
            sh += 7
            if c < 0x80:
                break
            if sh > 21:
                raise OSError(errno.EIO)
        if n > MAX_IN:
            while n:
                n -= len(self._read(min(n, 256)))
            return h, None
        return h, self._exact(n)

    def _ack(self, kind, pid):
        """Body of the ack for pid; what else arrives meanwhile is handled."""
        while True:
            h, b = self._packet()
            if h == kind and b and (b[0] << 8 | b[1]) == pid:
                return b
            self._got(h, b)

    def _got(self, h, b):
        if h == 0xD0:
            self._ping_t = None
        elif h & 0xF0 == 0x30 and b:
            i = 2 + (b[0] << 8 | b[1])
            t = b[2:i]
            if h & 6:
                self._write(b"\x40\x02" + b[i:i + 2])  # PUBACK
                i += 2
            self._in.append((t, b[i:]))
            if len(self._in) > KEEP:
                self._in.pop(0)

    def _drain(self):
        """Handle what has arrived, without waiting for more."""
        while self._left() > 0:
            self._p.modify(self.s, select.POLLIN)  # a write may have waited for POLLOUT
            if not self._p.poll(0):
                break
            self._got(*self._packet())
        if self._ping_t is not None and ticks_diff(ticks_ms(), self._ping_t) >= self.timeout_ms:
            raise OSError(errno.ETIMEDOUT)  # the broker stopped answering
