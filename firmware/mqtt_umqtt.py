"""The MqttClient interface (see hanport.ports) over the frozen umqtt.simple.

umqtt.simple leaves its socket blocking without a timeout: wait_msg() calls
setblocking(True), which clears any timeout on the ESP32, and a half-open
link then blocks the loop (and its watchdog) forever. So the timeout is set
before every blocking call, and the socket is wrapped so that umqtt's own
setblocking(True) restores the timeout instead of clearing it.
Not umqtt.robust: it retries forever inside publish().
"""
import errno
import time

from umqtt.simple import MQTTClient, MQTTException

from hanport.ports import BrokerRefused

PINGRESP = 0xD0


def _bytes(s):
    return s.encode() if isinstance(s, str) else s


class _TimeoutSocket:
    """The socket as umqtt.simple uses it, where 'blocking' means 'with our timeout'."""

    def __init__(self, sock, timeout_s):
        self.sock = sock
        self.timeout_s = timeout_s

    def read(self, n):
        return self.sock.read(n)

    def write(self, buf, n=None):
        return self.sock.write(buf) if n is None else self.sock.write(buf, n)

    def setblocking(self, flag):
        self.sock.settimeout(self.timeout_s if flag else 0)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        self.sock.close()


class UmqttClient:
    # Arguments in umqtt's order, then the will (published retained by the
    # broker when the dongle vanishes); hanport.app calls it as client_factory.
    def __init__(self, client_id, host, port=1883, user=None, password=None,
                 keepalive=60, will_topic=None, will_payload=b"offline", timeout_s=10):
        # umqtt counts string lengths in characters: bytes everywhere.
        user = _bytes(user) or None
        self._c = c = MQTTClient(_bytes(client_id), host, port, user=user,
                                 password=_bytes(password) if user else None,
                                 keepalive=keepalive)
        if will_topic:
            c.set_last_will(_bytes(will_topic), _bytes(will_payload), retain=True)
        self._timeout_s = timeout_s
        self._ping_sent = None  # ticks of a PINGREQ not yet answered

    def _sock(self):
        s = self._c.sock
        if s is None:
            raise OSError(errno.ENOTCONN)
        s.settimeout(self._timeout_s)
        return s

    def connect(self):
        self.disconnect()
        self._ping_sent = None
        c = self._c
        try:
            # umqtt creates the socket and sets this timeout right after.
            c.connect(timeout=self._timeout_s)
        except MQTTException as e:
            self.disconnect()
            raise BrokerRefused(e.args[0] if e.args else None)
        except (IndexError, AssertionError):
            # The broker closed the connection during CONNECT (short read).
            self.disconnect()
            raise OSError(errno.ECONNRESET)
        except Exception:
            self.disconnect()
            raise
        c.sock = _TimeoutSocket(c.sock, self._timeout_s)

    def publish(self, topic, payload, retain=False, qos=0):
        self._sock()
        try:
            self._c.publish(_bytes(topic), _bytes(payload), retain, qos)
        except (IndexError, AssertionError):  # short read while waiting for PUBACK
            raise OSError(errno.ECONNRESET)

    def ping(self):
        s = self._sock()
        if self._drain(s):
            self._ping_sent = None
        if self._ping_sent is not None:
            if time.ticks_diff(time.ticks_ms(), self._ping_sent) > self._timeout_s * 1000:
                raise OSError(errno.ETIMEDOUT)  # half-open: the broker stopped answering
            return  # the last ping is still in flight
        self._c.ping()
        self._ping_sent = time.ticks_ms()

    def _drain(self, s):
        """Read and drop whatever the broker sent, without waiting; True if a PINGRESP was among it."""
        pong = False
        while True:
            s.settimeout(0)
            head = s.read(1)
            s.settimeout(self._timeout_s)
            if head is None:  # nothing waiting
                return pong
            if not head:
                raise OSError(errno.ECONNRESET)  # the broker closed the connection
            n = 0
            shift = 0
            while True:  # "remaining length": 7 bits a byte, low first
                b = s.read(1)
                if not b:
                    raise OSError(errno.ECONNRESET)
                n |= (b[0] & 0x7F) << shift
                if not b[0] & 0x80:
                    break
                shift += 7
            if n:
                s.read(n)
            if head[0] == PINGRESP:
                pong = True

    def disconnect(self):
        s = self._c.sock
        self._c.sock = None
        if s is None:
            return
        try:
            s.settimeout(1)
            s.write(b"\xe0\x00")  # DISCONNECT: the broker then drops the will
        except Exception:
            pass
        try:
            s.close()
        except Exception:
            pass
