"""hanport.mqtt.Client over a fake socket: the same script under CPython and MicroPython.

The WebAssembly MicroPython has no sockets, so socket and select are fakes put into
sys.modules before the import. The fake writes at most 7 bytes a call and refuses
every other write (EAGAIN), so partial writes and waits are exercised. Prints the
bytes the client wrote and what each call did; test_mqtt_client.py compares the
output of both interpreters.
"""
import errno
import sys
import time

try:
    sleep_ms = time.sleep_ms
except AttributeError:
    def sleep_ms(ms):
        time.sleep(ms / 1000)


class Sock:
    def __init__(self):
        self.out = bytearray()
        self.inq = bytearray()
        self.eof = False
        self.later = b""  # the broker's answer, there once the client has written
        self.closed = False
        self.turn = 0

    def setblocking(self, flag):
        pass

    def setsockopt(self, *args):
        pass

    def connect(self, addr):
        raise OSError(errno.EINPROGRESS)

    def send(self, b):
        self.turn += 1
        if self.turn % 2:
            raise OSError(errno.EAGAIN)
        n = min(len(b), 7)
        self.out += bytes(b[:n])
        self.inq += self.later
        self.later = b""
        return n

    def recv(self, n):
        if not self.inq:
            if self.eof:
                return b""
            raise OSError(errno.EAGAIN)
        d = bytes(self.inq[:n])
        self.inq[:n] = b""
        return d

    def close(self):
        self.closed = True


class Poll:
    def register(self, s, ev):
        self.s = s
        self.ev = ev

    def modify(self, s, ev):
        self.ev = ev

    def poll(self, ms=-1):
        s = self.s
        if self.ev & 4 or s.inq or s.eof:  # POLLOUT: always writable
            return [(s, self.ev)]
        if ms > 0:
            sleep_ms(ms)
        return []


class Mod:
    pass


SOCKS = []


def new_socket(*args):
    SOCKS.append(Sock())
    return SOCKS[-1]


socket = Mod()
socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.TCP_NODELAY = 1, 6, 1
socket.getaddrinfo = lambda host, port, af=0, kind=0: [(2, 1, 0, "", (host, port))]
socket.socket = new_socket
select = Mod()
select.POLLIN, select.POLLOUT, select.POLLERR, select.POLLHUP = 1, 4, 8, 16
select.poll = Poll
sys.modules["socket"] = socket
sys.modules["select"] = select

from hanport.mqtt import Client  # noqa: E402
from hanport.ports import BrokerRefused  # noqa: E402

NAMES = {errno.ETIMEDOUT: "ETIMEDOUT", errno.ECONNRESET: "ECONNRESET", errno.ENOTCONN: "ENOTCONN"}
CONNACK = b"\x20\x02\x00\x00"


def hx(b):
    return " ".join("%02x" % x for x in b)


def taken(s):
    b = bytes(s.out)
    s.out[:] = b""
    return hx(b)


def err(f):
    try:
        f()
        return "no error"
    except OSError as e:
        return NAMES.get(e.args[0], str(e.args[0]))
    except BrokerRefused as e:
        return "refused %d" % e.code()


def closed(s):
    return "closed" if s.closed else "open"


def new(timeout_ms=300):
    return Client("dongle-\u00f8", "10.0.0.2", 1883, "han", "", 60, b"han/x/status", b"offline",
                  timeout_ms)


def connect(c, reply=CONNACK):
    # The reply waits in the socket the client is about to create.
    orig = socket.socket

    def make(*args):
        s = orig(*args)
        s.inq += reply
        return s
    socket.socket = make
    try:
        return err(c.connect)
    finally:
        socket.socket = orig


c = new()
print("connect", connect(c), taken(SOCKS[-1]))
s = SOCKS[-1]
s.out[:] = b""
c.publish(b"han/x/list1", b"{}n")
print("qos0", taken(s))
# Six incoming QoS 1 messages arrive before the PUBACK: each is acknowledged, the newest 4 kept.
for i in range(6):
    t = b"ha/%d" % i
    s.later += bytes((0x32, 2 + len(t) + 2 + 1, 0, len(t))) + t + bytes((0, 7 + i)) + b"m"
s.later += b"\x40\x02\x00\x63\x40\x02\x00\x01"  # a stray PUBACK (pid 99) first: not ours
c.publish("han/x/list3", "T\u00e5rn", retain=True, qos=1)
out = taken(s)
print("qos1", out[:out.index(" 40 02")])
print("acked", out[out.index("40 02"):][:23])
kept = []
while True:
    m = c.poll()
    if m is None:
        break
    kept.append(m[0].decode())
print("kept", len(kept), "newest", " ".join(kept))
s.later = b"\x90\x03\x00\x02\x01"
print("suback", c.subscribe("homeassistant/status", 1))
print("subscribe", taken(s))
c.ping()
print("ping", taken(s))
s.inq += b"\xd0\x00"
print("pong", c.poll())
c.ping()
print("ping again", taken(s))
sleep_ms(320)
print("overdue", err(c.poll), closed(s))
print("not connected", err(c.ping))

c = new()
print("refused", connect(c, b"\x20\x02\x00\x05")[8:], closed(SOCKS[-1]))
c = new()
orig_socket = socket.socket


def eof_socket(*args):
    s = orig_socket(*args)
    s.eof = True
    return s


socket.socket = eof_socket
print("reset", err(c.connect), closed(SOCKS[-1]))
socket.socket = orig_socket
c = new()
t0 = time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.monotonic() * 1000)
r = connect(c, b"")
t1 = time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.monotonic() * 1000)
print("no connack", r, closed(SOCKS[-1]), "in time" if 290 <= t1 - t0 <= 400 else t1 - t0)
long_ones = []
for topic, payload in ((b"t" * 65536, b""), (b"t/x", b"p" * 65536), ("\u00e9" * 32768, b"")):
    try:
        c.publish(topic, payload)
        long_ones.append("sent")
    except ValueError:
        long_ones.append("ValueError")
print("too long", " ".join(long_ones))
c = new()
connect(c)
s = SOCKS[-1]
s.out[:] = b""
s.inq += b"\xd0\x00"  # unread input: read before the close
s.eof = True
c.disconnect()
print("disconnect", taken(s), closed(s), len(s.inq))
c.disconnect()
c = new()
connect(c)
s = SOCKS[-1]


def broken(b):
    raise OSError(errno.EBADF)


s.send = broken
c.disconnect()
print("disconnect on a broken socket", closed(s))
