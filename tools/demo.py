"""See the dongle work without a meter, a dongle or a broker: `make demo`.

Starts an embedded MQTT broker (amqtt) on a free loopback port unless
--broker is given, feeds the firmware's own main loop (the PC twin) with a
simulated Aidon 6525 meter (pc/meter.py: frames in the recorded layout, a
household's consumption, a meter clock that moves one hour at each List 3),
or with a recorded capture (--capture), and shows what a subscriber
receives, Home Assistant's discovery messages included, refreshed in place.
Ctrl-C ends it.
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
from pc import meter as pc_meter  # noqa: E402
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
        self.broker = _broker_class()({
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


def _broker_class():
    """amqtt's Broker, with retained messages sent only where MQTT says.

    amqtt 0.12 sends, on every CONNECT, the retained messages matching every
    topic filter any client has subscribed (at QoS 0), and again on the
    client's own SUBSCRIBE: a new viewer got each retained message twice, and
    the dongle's client got the viewer's retained topics without subscribing
    to them. MQTT 3.1.1 [MQTT-3.3.1-6]: retained messages go to a new
    subscription whose filter matches. Here a filter the session has not
    subscribed sends nothing; the rest is amqtt's own code."""
    from amqtt.broker import Broker

    class RetainFixBroker(Broker):
        async def _publish_retained_messages_for_subscription(self, subscription, session):
            subs = getattr(self, "_subscriptions", {}).get(subscription[0], ())
            if not any(s is session or s.client_id == session.client_id for s, _ in subs):
                return
            await Broker._publish_retained_messages_for_subscription(self, subscription, session)

    return RetainFixBroker


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what a user's subscriber sees -------------------------------------------

class View:
    def __init__(self, host, port, user, password, base, ha_prefix=None, steps_kwh=()):
        import paho.mqtt.client as mqtt

        self.base = base
        self.ha_prefix = ha_prefix
        self.steps = tuple(steps_kwh)
        self.latest = {}  # topic suffix -> (received monotonic, parsed payload)
        self.counts = collections.Counter()
        self.configs = {}  # discovery config topic -> entity name
        self.config_msgs = 0
        self.config_names = collections.deque(maxlen=3)  # the latest announced
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
        client.subscribe(self.base + "/#", qos=1)
        if self.ha_prefix:
            client.subscribe(self.ha_prefix + "/#", qos=1)

    def _on_message(self, client, userdata, msg):
        text = msg.payload.decode("utf-8", "replace")
        try:
            value = json.loads(text, parse_float=Decimal)  # exact, as published
        except ValueError:
            value = text
        if not msg.topic.startswith(self.base + "/"):
            if msg.topic.endswith("/config"):  # Home Assistant discovery
                name = value.get("name") if isinstance(value, dict) else None
                with self.lock:
                    self.config_msgs += 1
                    self.configs[msg.topic] = name
                    if name:
                        self.config_names.append(str(name))
            return
        suffix = msg.topic[len(self.base) + 1:]
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
            n_configs, n_config_msgs = len(self.configs), self.config_msgs
            config_names = list(self.config_names)
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
            out.append(" List 3    meter clock {}, received {}".format(l3.get("meter_clock"), ago(t3)))
            out.append("           registers: import {}, export {}".format(
                kilo(l3.get("energy_import_wh"), "kWh"), kilo(l3.get("energy_export_wh"), "kWh")))
        else:
            out.append(" List 3    (waiting for List 3: the meter sends it once an hour, at XX:00:10)")
        out.append("")
        out.extend(self.energy_lines(get("hour")[0], get("energy")[0], counts.get("hour", 0)))
        out.append("")
        if not self.ha_prefix:
            out.append(" Home Assistant  (discovery not watched)")
        elif n_configs:
            out.append(" Home Assistant  {} sensors announced under {}/ ({} config messages, retained)".format(
                n_configs, self.ha_prefix, n_config_msgs))
            out.append("                 latest: " + ", ".join(config_names))
        else:
            out.append(" Home Assistant  (waiting for the discovery messages under {}/, one a second)".format(
                self.ha_prefix))
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


    def energy_lines(self, hour, en, n_hours):
        """The hour, today, month and capacity tariff lines from <base>/hour and /energy."""
        out = [" Energy, by the meter's clock (the dongle works it out from the List 3 registers)"]
        if hour:
            out.append("   Last hour   {:<24}import {:>12}   export {:>10}   ({} hour messages)".format(
                "{} {}-{}".format(day(hour.get("start")), hhmm(hour.get("start")), hhmm(hour.get("end"))),
                kilo(hour.get("import_wh"), "kWh"), kilo(hour.get("export_wh"), "kWh"), n_hours))
            if hour.get("hours", 1) != 1:
                out[-1] += "  a gap of {} hours".format(hour.get("hours"))
        else:
            out.append("   Last hour   (waiting: two List 3 an hour apart make an hour)")
        if not en:
            out.append("   (waiting for the first List 3)")
            return out
        if en.get("hour_start"):
            out.append("   This hour   {:<24}import {:>12}   so far (estimate, updated each minute)".format(
                "since " + hhmm(en.get("hour_start")), kilo(en.get("hour_import_wh"), "kWh")))
        out.append("   Today       {:<24}import {:>12}   export {:>10}".format(
            day(en.get("meter_clock")), kilo(en.get("today_import_wh"), "kWh"), kilo(en.get("today_export_wh"), "kWh")))
        out.append("   This month  {:<24}import {:>12}   export {:>10}".format(
            month(en.get("meter_clock")), kilo(en.get("month_import_wh"), "kWh"), kilo(en.get("month_export_wh"), "kWh")))
        out.append(" Capacity tariff: this month's three highest hours, each on a different day")
        peaks = en.get("peaks") or []
        out.append("   Peaks       " + ("   ".join("{} ({}, {:02d}:00)".format(
            kilo(p.get("wh"), "kWh"), short_date(p.get("date")), int(p.get("hour", 0))) for p in peaks)
            or "(none yet: the first full hour makes one)"))
        step = en.get("capacity_step")
        out.append("   Average     {}: step {} ({})".format(
            kilo(en.get("capacity_wh"), "kWh"), step, self.step_range(step)))
        if en.get("headroom_wh") is None:
            out.append("   Headroom    - (the top step has no limit)")
        else:
            out.append("   Headroom    {} more can be used this hour before the average passes {} (step {})".format(
                kilo(en.get("headroom_wh"), "kWh"), kilo(en.get("step_limit_wh"), "kWh"),
                step + 1 if isinstance(step, int) else "?"))
        return out

    def step_range(self, step):
        """"2-5 kWh" for step 2 of the configured limits."""
        s = self.steps
        if not s or not isinstance(step, int) or step < 1:
            return "?"
        lo = 0 if step == 1 else s[step - 2]
        if step > len(s):
            return "over {} kWh".format(lo)
        return "{}-{} kWh".format(lo, s[step - 1])


def day(text):
    """"2026-03-05" of a meter time or date text."""
    return str(text)[:10] if text else "-"


def short_date(text):
    """"27 Nov" of "2026-11-27"."""
    import calendar

    try:
        return "{} {}".format(int(str(text)[8:10]), calendar.month_abbr[int(str(text)[5:7])])
    except (ValueError, IndexError):
        return "-"


def hhmm(text):
    return str(text)[11:16] if text and len(str(text)) >= 16 else "-"


def month(text):
    import calendar

    try:
        return "{} {}".format(calendar.month_name[int(str(text)[5:7])], str(text)[:4])
    except (ValueError, IndexError):
        return "-"


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


def meter_start(history_hours):
    """Where the simulated meter's clock starts: history_hours before now, so that the
    history ends at about the real time of day, moved back by whole days while that
    would start it in an earlier month (three days of peaks, then a month change later)."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    start = pc_meter.default_start(history_hours, now)
    if history_hours <= 28 * 24:
        while pc_meter.local_time(start).month != pc_meter.local_time(now - timedelta(hours=1)).month:
            now -= timedelta(days=1)
            start -= timedelta(days=1)
    return start


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
    p = Parser(prog="demo.py", description="Run the dongle's loop on a simulated Aidon meter (or a recording) "
                                             "and watch what MQTT and Home Assistant receive.")
    p.add_argument("--broker", help="HOST:PORT of an MQTT broker to use instead of the embedded one")
    p.add_argument("--user", default="")
    p.add_argument("--password-file")
    p.add_argument("--capture", nargs="?", const=CAPTURE, metavar="FILE",
                   help="replay recorded frames instead of the simulated meter (without FILE: "
                        "tools/data/aidon_demo.hex, recorded Aidon 6525 frames)")
    p.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    p.add_argument("--hour-every", type=_seconds, default=20, metavar="S",
                   help="simulated meter: its clock moves one hour every S seconds (default 20, at least 10)")
    p.add_argument("--history-hours", type=int, default=72, metavar="N",
                   help="simulated meter: first send the List 3 of the last N hours, ten a second "
                        "(default 72: three days, so that the capacity tariff has its peaks)")
    p.add_argument("--first-hourly", type=_seconds, default=15,
                   help="with --capture: seconds until the first hourly List 3 (a real meter: up to an hour)")
    return p.parse_args(argv)


def main(argv=None):
    try:
        a = parse_args(argv)
        password = pc_parts.read_password(a.password_file)
        frames = read_frames(a.capture) if a.capture else None
        if not 0 <= a.history_hours <= 24 * 31:
            raise UserError("--history-hours must be 0..744")
        if frames is None and a.hour_every < 10:
            raise UserError("--hour-every must be at least 10 seconds (List 3 takes the place of a List 2)")
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
    ha = cfg.get("ha") or {}
    ha_prefix = (ha.get("prefix") or "homeassistant") if ha.get("discovery", True) else None
    if frames is not None:
        source = pc_parts.ReplaySource(frames, realtime=True, first_hour_ms=int(a.first_hourly * 1000))
        what = [" HAN-port dongle demo: recorded Aidon 6525 traffic, replayed with the meter's timing",
                " (List 1 every 2.5 s, List 2 every 10 s, List 3 hourly), through the firmware's main loop."]
    else:
        m = pc_meter.AidonMeter(meter_start(a.history_hours))
        source = pc_meter.MeterSource(pc_meter.schedule(m, a.history_hours, a.hour_every))
        what = [" HAN-port dongle demo: a simulated Aidon 6525 (frames in the recorded layout) through the",
                " firmware's main loop. List 1 every 2.5 s, List 2 every 10 s; the meter's clock moves one hour",
                " with each List 3, every {:g} s here (a real meter: every hour), after {} hours of history.".format(
                    a.hour_every, a.history_hours)]
    log_lines = collections.deque(maxlen=4)
    stop = threading.Event()

    def loop():
        run(source, pc_parts.PcClock(), pc_parts.PcLink(), pc_parts.mqtt_factory(),
            pc_parts.PcStorage(None), pc_parts.PcWatchdog(), pc_parts.PcSystem(), cfg,
            stop=lambda app: stop.is_set(),
            log=lambda s: log_lines.append(time.strftime("%H:%M:%S ") + s))

    try:
        view = View(host, port, a.user, password, base, ha_prefix,
                    (cfg.get("tariff") or {}).get("steps_kwh") or ())
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
            header = what + [
                " Broker {}, subscribed to {}/#, {:.0f} s. Ctrl-C stops.".format(where, base, elapsed),
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
