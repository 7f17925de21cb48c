"""A misbehaving broker for the tests: a TCP proxy on loopback in front of mosquitto.

    p = FaultProxy(broker.port)            # forwards both ways, packet by packet
    p.close_after_publish = True           # forwards a PUBLISH, then closes the connection
    p.close_after_publish = 3              # ... the 3rd PUBLISH of each connection (True is 1)
    p.cut                                  # (topic, payload, qos) of each PUBLISH forwarded
                                           # before such a close (QoS 1: its PUBACK was lost)
    p.drop_pingresp = True                 # the broker "stops answering pings"
    p.stall.set()                          # stops reading from the client (writes back up)
    p.blackout = True                      # a dead radio: both ways read and dropped
    p.hold_new = True                      # new connections are held: never a CONNACK
    p.ping_times                           # time.monotonic() of each PINGREQ seen
    FaultProxy(None)                       # accepts, reads, never answers (no CONNACK)
    FaultProxy(None, close_at_once=True)   # accepts and closes when the client speaks
    p.port; p.from_client (bytes read from the client); p.pingreqs; p.close()
"""
import socket
import threading
import time


def parse_publish(packet):
    """(topic, payload, qos) of one whole PUBLISH packet (as split_packets gives it)."""
    i = 1
    while packet[i] & 0x80:
        i += 1
    i += 1
    n = packet[i] << 8 | packet[i + 1]
    topic = packet[i + 2:i + 2 + n]
    qos = packet[0] >> 1 & 3
    body = i + 2 + n + (2 if qos else 0)
    return topic, packet[body:], qos


def split_packets(buf):
    """(complete MQTT packets, rest) of a byte stream."""
    out = []
    while len(buf) >= 2:
        n = sh = 0
        i = 1
        while True:
            if i >= len(buf):
                return out, buf
            c = buf[i]
            n |= (c & 0x7F) << sh
            sh += 7
            i += 1
            if c < 0x80:
                break
        if len(buf) < i + n:
            break
        out.append(buf[:i + n])
        buf = buf[i + n:]
    return out, buf


class FaultProxy:
    def __init__(self, upstream_port, close_at_once=False, rcvbuf=None):
        self.upstream = upstream_port
        self.close_at_once = close_at_once
        self.close_after_publish = False
        self.drop_pingresp = False
        self.blackout = False
        self.hold_new = False
        self.cut = []
        self.ping_times = []
        self.stall = threading.Event()
        self.from_client = 0
        self.pingreqs = 0
        self.socks = []
        self.closed = False
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:  # inherited by accepted sockets: a small window makes the client's writes block
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        ls.settimeout(0.1)
        self.ls = ls
        self.port = ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            self.socks.append(c)
            if self.upstream is None or self.hold_new:
                threading.Thread(target=self._hold, args=(c,), daemon=True).start()
                continue
            u = socket.create_connection(("127.0.0.1", self.upstream))
            self.socks.append(u)
            cut = []  # set when the connection is to end: nothing more reaches the client
            publishes = [0]  # PUBLISH packets from the client on this connection
            for src, dst, up in ((c, u, True), (u, c, False)):
                threading.Thread(target=self._pump, args=(src, dst, up, cut, publishes),
                                 daemon=True).start()

    def _hold(self, c):
        c.settimeout(0.1)
        while not self.closed:
            try:
                d = c.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not d:
                return
            self.from_client += len(d)
            if self.close_at_once:
                c.close()
                return

    def _pump(self, src, dst, up, cut, publishes):
        src.settimeout(0.05)
        buf = b""
        while not self.closed:
            if up and self.stall.is_set():
                time.sleep(0.01)
                continue
            try:
                d = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                d = b""
            if not d:
                self._shut(src, dst)
                return
            if up:
                self.from_client += len(d)
            packets, buf = split_packets(buf + d)
            for p in packets:
                if self.blackout:
                    continue  # lost in the air
                kind = p[0] & 0xF0
                if up and kind == 0xC0:
                    self.pingreqs += 1
                    self.ping_times.append(time.monotonic())
                if not up and (cut or kind == 0xD0 and self.drop_pingresp):
                    continue
                last = False
                if up and kind == 0x30:
                    publishes[0] += 1
                    k = self.close_after_publish
                    last = bool(k) and publishes[0] >= int(k)
                if last:
                    cut.append(1)  # the broker's PUBACK must not get through
                try:
                    dst.sendall(p)
                except OSError:
                    self._shut(src, dst)
                    return
                if last:
                    self.cut.append(parse_publish(p))
                    self._shut(src, dst)
                    return

    def _shut(self, a, b):
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.closed = True
        for s in self.socks + [self.ls]:
            try:
                s.close()
            except OSError:
                pass
