"""A real mosquitto for the tests: loopback, a free port, a password file, no anonymous.

    with Mosquitto(tmp_path, {"han": "secret"}) as b:
        b.port; b.stop(); b.start()   # restart on the same port
"""
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def available():
    return os.path.exists(MOSQUITTO) and os.path.exists(MOSQUITTO_PASSWD)


def require():
    """Fail (never skip: a skipped test hides a broken set-up) when mosquitto is missing."""
    if not available():
        import pytest

        pytest.fail("mosquitto is not installed (looked for {} and {}): the MQTT tests start "
                    "their own broker. Debian: apt-get install mosquitto".format(
                        MOSQUITTO, MOSQUITTO_PASSWD), pytrace=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, directory, users, port=None):
        require()
        self.dir = str(directory)
        self.port = port or free_port()
        self.proc = None
        pw = os.path.join(self.dir, "passwd")
        first = True
        for user, password in users.items():
            args = [MOSQUITTO_PASSWD, "-b"] + (["-c"] if first else []) + [pw, user, password]
            subprocess.run(args, check=True, capture_output=True)
            first = False
        os.chmod(pw, 0o600)  # mosquitto 2.x warns about readable password files
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener {} 127.0.0.1\n".format(self.port))
            f.write("allow_anonymous false\n")
            f.write("password_file {}\n".format(pw))
            f.write("persistence false\n")
            # Run as ourselves: as root, mosquitto would switch to a user that
            # cannot read the 0600 password file.
            f.write("user {}\n".format(pwd.getpwuid(os.getuid()).pw_name))
        self.log = os.path.join(self.dir, "mosquitto.log")

    def start(self, timeout=5.0):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf, "-v"], stdout=logf,
                                     stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + open(self.log).read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen on port {}".format(self.port))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Subscriber:
    """A paho client in its own thread, recording (time, topic, payload, retain)."""

    def __init__(self, port, user, password, topic="#"):
        import paho.mqtt.client as mqtt

        self.messages = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub-{}".format(id(self)))
        c.username_pw_set(user, password)
        c.on_connect = lambda cl, ud, fl, rc, pr: (cl.subscribe(topic), self.ready.set())
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.c = c
        if not self.ready.wait(5):
            raise RuntimeError("subscriber did not connect")
        time.sleep(0.1)  # let the SUBACK arrive before the test publishes

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((time.monotonic(), msg.topic, bytes(msg.payload), msg.retain))

    def on(self, suffix):
        with self.lock:
            return [m for m in self.messages if m[1].endswith(suffix)]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def broker_fixture(user, password):
    """A pytest fixture `broker`: a running Mosquitto with `user` and a "viewer" account.

        broker = broker_fixture(USER, PASSWORD)   # at a test module's top level
    """
    import pytest

    @pytest.fixture
    def broker(tmp_path):
        b = Mosquitto(tmp_path, {user: password, "viewer": "view-pw"})
        b.start()
        yield b
        b.stop()

    return broker
