"""See the dongle work without a meter, a dongle or a broker: `make demo`.

Starts an embedded MQTT broker (amqtt) on a free loopback port unless
--broker is given, replays recorded Aidon traffic with the meter's timing
through the firmware's own main loop (the PC twin), and shows what a
subscriber receives, refreshed in place. Ctrl-C ends it.
"""
import argparse
import asyncio
import collections
import json
import logging
import os
import sys
import threading
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repo root: pc/ and lib/ via pc.parts
from pc import parts as pc_parts  # noqa: E402
from pc.parts import UserError  # noqa: E402
from hanport.app import run  # noqa: E402

CAPTURE = os.path.join(HERE, "data", "aidon_demo.hex")
DEVICE = "demo"


# -- the embedded broker ----------------------------------------------------

class EmbeddedBroker:
    """amqtt in a thread of its own, anonymous, on 127.0.0.1."""

    def __init__(self):
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        if not self.started.wait(15):
            raise RuntimeError("the embedded MQTT broker did not start")
        if self.error:
            raise self.error

    def _main(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except Exception as e:  # port taken, amqtt missing a dependency, ...
            self.error = e
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()

    async def _start(self):
        from amqtt.broker import Broker

        self.broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:{}".format(self.port)}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        })
        await self.broker.start()

    def stop(self):
        try:
            asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what a user's subscriber sees -------------------------------------------

class View:
    def __init__(self, host, port, user, password, base):
        import paho.mqtt.client as mqtt

        self.base = base
        self.latest = {}  # topic suffix -> (received monotonic, parsed payload)
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.connected = False
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-viewer")
        if user:
            c.username_pw_set(user, password)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.connect(host, port, 30)
        c.loop_start()
        self.c = c

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connected = not reason.is_failure
        client.subscribe(self.base + "/#")

    def _on_message(self, client, userdata, msg):
        suffix = msg.topic[len(self.base) + 1:]
        text = msg.payload.decode("utf-8", "replace")
        try:
            value = json.loads(text, parse_float=Decimal)  # exact, as published
        except ValueError:
            value = text
        with self.lock:
            self.latest[suffix] = (time.monotonic(), value)
            self.counts[suffix] += 1

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()

    def render(self, header, log_lines):
        with self.lock:
            latest = dict(self.latest)
            counts = dict(self.counts)
        now = time.monotonic()

        def get(suffix):
            t, v = latest.get(suffix, (None, None))
            return (v if isinstance(v, dict) else {}), t

        def ago(t):
            return "-" if t is None else "{:.1f} s ago".format(now - t)

        l1, t1 = get("list1")
        l2, t2 = get("list2")
        l3, t3 = get("list3")
        dg, td = get("diag")
        # The freshest power: List 1 every 2.5 s, List 2 and 3 carry it too.
        power, tp = l1, t1
        for lst, t in ((l2, t2), (l3, t3)):
            if t is not None and (tp is None or t > tp):
                power, tp = lst, t
        inst = l2 if (t2 or 0) >= (t3 or 0) else l3
        status = latest.get("status", (None, "-"))[1]

        out = header[:]
        out.append("")
        out.append(" Status    {}".format(status))
        export = power.get("power_export_w", inst.get("power_export_w"))  # List 1 has import only
        out.append(" Power     {:>10} import   {:>8} export     {}".format(
            unit(power.get("power_import_w"), "W"), unit(export, "W"), ago(tp)))
        out.append(" Reactive  {:>10} import   {:>8} export".format(
            unit(inst.get("reactive_import_var"), "var"), unit(inst.get("reactive_export_var"), "var")))
        out.append("")
        out.append("                  L1          L2          L3")
        out.append(" Current   " + "".join("{:>12}".format(unit(inst.get("current_l%d_a" % i), "A")) for i in (1, 2, 3)))
        out.append(" Voltage   " + "".join("{:>12}".format(unit(inst.get("voltage_l%d_v" % i), "V")) for i in (1, 2, 3)))
        out.append("")
        if inst:
            out.append(" Meter     {} {}, id {} ({})".format(
                str(inst.get("meter", "?")).capitalize(), inst.get("meter_type", "?"),
                inst.get("meter_id", "?"), inst.get("list_version", "?")))
        else:
            out.append(" Meter     (waiting for List 2, every 10 s)")
        if l3:
            out.append(" Hourly    meter clock {}, received {}".format(l3.get("meter_clock"), ago(t3)))
            out.append("           energy   import {:>16}   export {:>12}".format(
                kilo(l3.get("energy_import_wh"), "kWh"), kilo(l3.get("energy_export_wh"), "kWh")))
            out.append("           reactive import {:>16}   export {:>12}".format(
                kilo(l3.get("reactive_energy_import_varh"), "kvarh"),
                kilo(l3.get("reactive_energy_export_varh"), "kvarh")))
        else:
            out.append(" Hourly    (waiting for List 3: the meter sends it once an hour, at XX:00:10)")
        out.append("")
        if dg:
            errs = dict(dg.get("hdlc_errors", {}))
            errs.update(dg.get("decode_errors", {}))
            bad = ", ".join("{} {}".format(k, v) for k, v in sorted(errs.items()) if v) or "none"
            out.append(" Diag      uptime {} s, mqtt {}, meter {} (last byte {} s ago), received {}".format(
                dg.get("uptime_s"), dg.get("mqtt"), dg.get("meter"), dg.get("meter_silent_s"), ago(td)))
            out.append("           frames {}, readings {}, published {}, errors: {}".format(
                dg.get("frames"), dg.get("readings"), dg.get("published"), bad))
            if dg.get("meter_msg"):
                out.append("           " + dg["meter_msg"])
        else:
            out.append(" Diag      (waiting for the first diag message)")
        out.append(" Messages  " + ", ".join("{} {}".format(k, counts[k]) for k in sorted(counts)))
        out.append("")
        out.append(" Loop log:")
        for line in log_lines:
            out.append("   " + line)
        return out


def unit(value, u):
    if value is None:
        return "-"
    return "{} {}".format(value, u)


def kilo(value, u):
    """Wh -> kWh exactly (Decimal, no float rounding)."""
    if value is None:
        return "-"
    return "{:f} {}".format(Decimal(value).scaleb(-3), u)


# -- main ---------------------------------------------------------------------

def read_frames(path):
    try:
        return pc_parts.read_capture(path)
    except OSError as e:
        raise UserError("cannot read {}: {}".format(pc_parts.shown(path), e.strerror or e), 1)
    except ValueError as e:
        raise UserError("{}: {}".format(pc_parts.shown(path), pc_parts.shown(e)), 1)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError("%s (--help lists the options)" % pc_parts.shown(message))


def _seconds(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError("%r must be 0 or more seconds" % text)
    return v


def parse_args(argv=None):
    p = Parser(prog="demo.py", description="Replay recorded Aidon traffic through the dongle's loop and watch MQTT.")
    p.add_argument("--broker", help="HOST:PORT of an MQTT broker to use instead of the embedded one")
    p.add_argument("--user", default="")
    p.add_argument("--password-file")
    p.add_argument("--capture", default=CAPTURE, help="frames to replay (default: recorded Aidon 6525 frames)")
    p.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    p.add_argument("--first-hourly", type=_seconds, default=15,
                   help="seconds until the first hourly List 3 (a real meter: up to an hour)")
    return p.parse_args(argv)


def main(argv=None):
    try:
        a = parse_args(argv)
        password = pc_parts.read_password(a.password_file)
        frames = read_frames(a.capture)
        if a.broker:
            try:
                host, port = pc_parts.parse_hostport(a.broker)
            except ValueError as e:
                raise UserError("--broker: %s" % pc_parts.shown(e))
    except UserError as e:
        sys.stderr.write("".join("demo: %s\n" % line for line in str(e).splitlines()))
        return e.status
    logging.basicConfig(level=logging.CRITICAL)  # amqtt logs every packet otherwise
    broker = None
    if a.broker:
        where = "{}:{}".format(host, port)
    else:
        try:
            broker = EmbeddedBroker()
        except Exception as e:
            sys.exit("demo: cannot start the embedded MQTT broker: {}".format(e))
        host, port = "127.0.0.1", broker.port
        where = "{}:{} (embedded amqtt broker)".format(host, port)

    cfg = pc_parts.make_config(host, port, name=DEVICE, user=a.user, password=password,
                               diag_interval_s=10)
    base = cfg["mqtt"]["base_topic"]
    source = pc_parts.ReplaySource(frames, realtime=True, first_hour_ms=int(a.first_hourly * 1000))
    log_lines = collections.deque(maxlen=4)
    stop = threading.Event()

    def loop():
        run(source, pc_parts.PcClock(), pc_parts.PcLink(), pc_parts.mqtt_factory(),
            pc_parts.PcStorage(None), pc_parts.PcWatchdog(), pc_parts.PcSystem(), cfg,
            stop=lambda app: stop.is_set(),
            log=lambda s: log_lines.append(time.strftime("%H:%M:%S ") + s))

    try:
        view = View(host, port, a.user, password, base)
    except OSError as e:
        if broker:
            broker.stop()
        sys.exit("demo: cannot reach the MQTT broker at {}: {}".format(where, e))
    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    t0 = time.monotonic()
    tty = sys.stdout.isatty()
    if tty:
        sys.stdout.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear once
    lines = []
    try:
        while True:
            elapsed = time.monotonic() - t0
            header = [
                " HAN-port dongle demo: recorded Aidon 6525 traffic, replayed with the meter's timing",
                " (List 1 every 2.5 s, List 2 every 10 s, List 3 hourly), through the firmware's main loop.",
                " Broker {}, subscribed to {}/#, running {:.0f} s. Ctrl-C to stop.".format(where, base, elapsed),
            ]
            lines = view.render(header, list(log_lines))
            if tty:
                sys.stdout.write("\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J")
                sys.stdout.flush()
            if a.duration and elapsed >= a.duration:
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join(10)
        time.sleep(0.2)  # let the viewer see "offline"
        final = view.render(header, list(log_lines))  # shows status "offline"
        if tty:
            sys.stdout.write("\x1b[H" + "".join(line + "\x1b[K\n" for line in final) + "\x1b[J\x1b[?25h")
        else:
            print("\n".join(final))
        view.close()
        if broker:
            broker.stop()
        print("demo: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
