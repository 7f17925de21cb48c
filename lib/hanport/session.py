"""The broker connection: when to connect, what a failure is called, keepalive.

The client (hanport.mqtt on the device and the PC) bounds every call by one
deadline, so each call here blocks at most its timeout; the loop feeds the
watchdog and drains the meter between calls. Backoff is timed from the END of
a failed attempt: an attempt that used up a 10 s timeout still waits its
delay before the next one.
"""
from hanport import diag
from hanport.backoff import Backoff
from hanport.ports import BrokerRefused

STABLE_MS = 30000  # a connection that lasted this long resets the backoff


class Session:
    def __init__(self, clock, link, client_factory, cfg, base, log, watchdog):
        self.clock = clock
        self.watchdog = watchdog
        self.link = link
        self.client_factory = client_factory
        self.log = log
        m = cfg["mqtt"]
        self.host = m.get("host")
        self.port = m.get("port") or 1883
        self.user = m.get("user") or ""
        self.password = m.get("password") or ""  # never logged or published
        self.client_id = m.get("client_id") or cfg["device"]["name"] or "hanport"
        self.keepalive_s = m.get("keepalive") or 0
        self.t_status = (base + "/status").encode()
        self.backoff = Backoff()
        self.client = None
        self.state = "starting"
        self.connects = 0
        self.connect_failures = 0
        self.disconnects = 0
        self.last_error = None
        self.connected_t = 0
        self.tx_t = 0

    def connect(self, now, subscribe=None):
        """One attempt when the network is up and the backoff allows: True when connected."""
        if not self.link.poll():
            self.state = "no_network"
            return False
        if not self.backoff.ready(now, self.clock.ticks_diff):
            return False
        self.state = "connecting"
        client = None
        try:
            client = self.client_factory(
                self.client_id, self.host, self.port, self.user, self.password,
                self.keepalive_s, self.t_status, b"offline")
            # Each call is bounded by the client's deadline: feed between them,
            # so the watchdog only has to cover one call (plus DNS).
            client.connect()
            self.watchdog.feed()
            client.publish(self.t_status, b"online", True, 1)
            if subscribe:
                self.watchdog.feed()
                client.subscribe(subscribe)
        except BrokerRefused as e:
            self._failed(client, diag.refused_text(e.args[0] if e.args else None))
            return False
        except Exception as e:  # OSError, or anything a client library raises
            self._failed(client, diag.error_text(e))
            return False
        now = self.clock.ticks_ms()  # connect may have taken seconds
        self.client = client
        self.connects += 1
        self.state = "connected"
        self.connected_t = now
        self.tx_t = now
        self.log("mqtt: connected to {}:{} as {}".format(self.host, self.port, self.client_id))
        return True

    def _failed(self, client, why):
        if client is not None:
            _quiet_disconnect(client)
        self.connect_failures += 1
        self.last_error = why
        self.state = why
        self.backoff.failed(self.clock.ticks_ms())  # from the end of the attempt
        self.log("mqtt: connect to {}:{} failed: {}; retry in {} ms".format(
            self.host, self.port, why, self.backoff.delay_ms))

    def publish(self, topic, payload, retain=False, qos=0):
        """Raises when the connection is gone (the caller then calls lost())."""
        self.client.publish(topic, payload, retain, qos)
        self.tx_t = self.clock.ticks_ms()

    def poll(self):
        """An incoming (topic, payload) or None; raises when the connection is gone."""
        return self.client.poll()

    def keepalive(self, now):
        """Ping when nothing was sent for half the keepalive; reset the backoff when stable."""
        diff = self.clock.ticks_diff
        if self.keepalive_s and diff(now, self.tx_t) >= self.keepalive_s * 500:
            self.client.ping()
            self.tx_t = now
        if self.backoff.failures and diff(now, self.connected_t) >= STABLE_MS:
            self.backoff.succeeded()

    def lost(self, why, gone=False):
        """The connection failed (why: readable). gone: the network itself is
        down, so the socket is closed without the DISCONNECT exchange, which
        could only wait out the client's deadline."""
        if gone:
            _quiet_close(self.client)
        else:
            _quiet_disconnect(self.client)
        self.client = None
        self.disconnects += 1
        self.state = "lost: " + why
        self.backoff.failed(self.clock.ticks_ms())
        self.log("mqtt: connection lost: {}; retry in {} ms".format(why, self.backoff.delay_ms))

    def close(self):
        """Say offline (the will covers crashes) and disconnect cleanly."""
        if self.client is not None:
            try:
                self.client.publish(self.t_status, b"offline", True, 1)
            except Exception:
                pass
            _quiet_disconnect(self.client)
            self.client = None
            self.state = "closed"


def _quiet_close(client):
    close = getattr(client, "close", None)  # optional in the client's interface
    if close is None:
        _quiet_disconnect(client)
        return
    try:
        close()
    except Exception:
        pass


def _quiet_disconnect(client):
    try:
        client.disconnect()
    except Exception:
        pass  # the socket is already gone: nothing left to close
