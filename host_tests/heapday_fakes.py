"""Stand-ins for the device's modules (machine, network, esp32, ntptime,
umqtt.simple), simulated time and a fake MQTT client, for host_tests/heapday.py.

Alone in this module because they stay in the heap all day (the product holds
them): a function keeps its whole module alive, so the set-up code lives
elsewhere (heapday_kit.py) and leaves the heap after start-up.
"""
import sys

EPOCH = 1772409600  # 2026-03-02 00:00:00 UTC


# -- stand-ins -------------------------------------------------------------------

class Mod:
    pass


class Sim:
    t = 0  # ms since the start of the day
    uart = None
    down = False
    counts = {}  # topic bytes -> messages the broker took
    connects = 0


class SimTime:
    # firmware.clock, safeboot and device use the time module: theirs is replaced by this.
    @staticmethod
    def ticks_ms():
        return Sim.t

    @staticmethod
    def ticks_diff(a, b):
        return a - b

    @staticmethod
    def sleep_ms(ms):
        Sim.t += ms

    @staticmethod
    def sleep(s):
        Sim.t += s * 1000

    @staticmethod
    def time():
        return EPOCH + Sim.t // 1000

    @staticmethod
    def gmtime(s=0):
        return (1970, 1, 1, 0, 0, 0, 3, 1)


class UART:
    INV_RX = 4
    IRQ_RXIDLE = 4

    def __init__(self, uart_id, **kw):
        self.data = b""
        self.pos = 0
        self.handler = None
        Sim.uart = self

    def irq(self, handler=None, trigger=0):
        self.handler = handler

    def readinto(self, buf, nbytes=-1):
        data = self.data
        p = self.pos
        n = len(data) - p
        if n <= 0:
            return None
        room = len(buf) if nbytes < 0 else nbytes
        if n > room:
            n = room
        for k in range(n):  # no slice: nothing allocated here
            buf[k] = data[p + k]
        self.pos = p + n
        return n

    def any(self):
        return len(self.data) - self.pos

    def send(self, frame):
        self.data = frame
        self.pos = 0
        if self.handler is not None:
            self.handler(self)  # RXIDLE at the end of the frame

    def deinit(self):
        pass


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1

    def __init__(self, n, mode=None, pull=None):
        pass

    def value(self, v=None):
        return 1  # the safe-boot button is not held


class WDT:
    def __init__(self, timeout=0):
        pass

    def feed(self):
        pass


class WLAN:
    IF_STA = 0
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    def __init__(self, interface=0):
        pass

    def active(self, on=None):
        return True

    def config(self, *a, **kw):
        return None

    def isconnected(self):
        return True

    def status(self, what=None):
        return -60 if what == "rssi" else 1010

    def connect(self, ssid=None, key=None):
        pass

    def disconnect(self):
        pass


class FakeClient:
    """The MQTT client interface (hanport.ports / hanport.mqtt); counts, keeps nothing."""

    def __init__(self, *args, **kw):
        self.up = False

    def connect(self, *a, **kw):
        self.up = False
        if Sim.down:
            raise OSError(113)  # ECONNABORTED on the ESP32: the broker is away
        self.up = True
        Sim.connects += 1

    def _check(self):
        if Sim.down or not self.up:
            self.up = False
            raise OSError(104)

    def publish(self, topic, payload, retain=False, qos=0):
        self._check()
        c = Sim.counts
        c[topic] = c.get(topic, 0) + 1

    def subscribe(self, topic, qos=0):
        self._check()

    def poll(self):
        self._check()
        return None

    def check_msg(self):
        self._check()

    def ping(self):
        self._check()

    def disconnect(self):
        self.up = False


def _reset():
    raise SystemExit(70)  # machine.reset() after a crash: the traceback was printed


def install():
    """Put the stand-ins where the firmware imports them."""
    machine = Mod()
    machine.UART, machine.Pin, machine.WDT = UART, Pin, WDT
    machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET = 1, 2, 3
    machine.DEEPSLEEP_RESET, machine.SOFT_RESET = 4, 5
    machine.reset_cause = lambda: 1
    machine.reset = _reset
    network = Mod()
    network.WLAN = WLAN
    network.hostname = lambda *a: None
    esp32 = Mod()
    esp32.HEAP_DATA = 4
    esp32.idf_heap_info = lambda caps: [(110000, 61000, 40960, 52000)]
    ntptime = Mod()
    ntptime.host, ntptime.timeout = "", 1
    ntptime.settime = lambda: None
    # umqtt.simple is frozen into the ESP32 firmware (its bytecode stays in flash);
    # firmware.mqtt_umqtt only needs the names to import.
    umqtt = Mod()
    simple = Mod()
    simple.MQTTClient, simple.MQTTException = FakeClient, OSError
    umqtt.simple = simple
    # The WebAssembly port has no sockets: hanport.mqtt needs the name to import
    # (the day's client is FakeClient; the radio is what this machine lacks).
    try:
        import socket  # noqa: F401
    except ImportError:
        sys.modules["socket"] = Mod()
    for name, mod in (("machine", machine), ("network", network), ("esp32", esp32),
                      ("ntptime", ntptime), ("umqtt", umqtt), ("umqtt.simple", simple)):
        sys.modules[name] = mod


