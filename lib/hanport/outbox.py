"""Messages waiting for the broker.

The loop only uses put / peek / pop / len, and removes a message only after
it was published, so a flash-backed queue (hourly readings that survive a
reboot) can replace this one without touching the loop.

Bounded in count and bytes: while the broker is away the oldest message of
the lowest priority goes first, so raw frames and the 2.5 s / 10 s lists
make room before any hourly List 3 does.
"""

RAW = 0  # raw frame hex: cheapest to lose
LIVE = 1  # List 1 / List 2: the next one comes within seconds
HOURLY = 2  # List 3: energy registers, once an hour


class Outbox:
    def __init__(self, max_messages=24, max_bytes=12288):
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.q = []  # [topic, payload, retain, prio], oldest first
        self.bytes = 0
        self.dropped = 0  # messages thrown away to make room
        self.dropped_hourly = 0  # of which List 3

    def __len__(self):
        return len(self.q)

    def put(self, topic, payload, retain=False, prio=LIVE):
        size = len(topic) + len(payload)
        if size > self.max_bytes:
            self._count_drop(prio)
            return
        while self.q and (
            len(self.q) >= self.max_messages or self.bytes + size > self.max_bytes
        ):
            self._drop_one()
        self.q.append((topic, payload, retain, prio))
        self.bytes += size

    def peek(self):
        """(topic, payload, retain, prio) of the oldest message, or None."""
        if not self.q:
            return None
        return self.q[0]

    def pop(self):
        """Forget the oldest message: call after it was published."""
        if self.q:
            m = self.q.pop(0)
            self.bytes -= len(m[0]) + len(m[1])

    def _drop_one(self):
        low = 0
        for i in range(1, len(self.q)):
            if self.q[i][3] < self.q[low][3]:
                low = i
        m = self.q.pop(low)
        self.bytes -= len(m[0]) + len(m[1])
        self._count_drop(m[3])

    def _count_drop(self, prio):
        self.dropped += 1
        if prio >= HOURLY:
            self.dropped_hourly += 1
