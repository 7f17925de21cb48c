"""Messages waiting for the broker, kept by what losing them would cost.

- billing (List 3, <base>/hour): in the durable queue (hanport.flashqueue on
  the Storage port) until the broker acknowledged them (QoS 1). They survive
  outages and reboots and leave in the order they came; nothing else can push
  them out.
- state (<base>/energy): retained, QoS 1, only the latest value per topic.
- live (List 1, List 2, raw frames): QoS 0, only the latest per topic: while
  the broker is away a newer reading replaces the waiting one (counted as
  replaced), so a long outage costs a few hundred bytes of RAM, not more.

The loop asks next(), publishes, and calls done() only after the publish
returned (for QoS 1: after the PUBACK).
"""

BILLING = 0
STATE = 1
LIVE = 2


class Outbox:
    def __init__(self, durable):
        self.durable = durable
        # [topic, payload] pairs in the order their topics first came: a list,
        # not a dict, so MicroPython and CPython send in the same order.
        self.state = []
        self.live = []
        self.replaced = 0  # live messages (readings) superseded before they were sent

    def __len__(self):
        return len(self.durable) + len(self.state) + len(self.live)

    def put_billing(self, topic, payload):
        """Stored durably before this returns; raises OSError when storage fails."""
        self.durable.put(topic, payload)

    def put_state(self, topic, payload):
        _latest(self.state, topic, payload)  # a newer state is no loss: not counted

    def put_live(self, topic, payload):
        if _latest(self.live, topic, payload):
            self.replaced += 1

    def next(self):
        """(topic, payload, kind) of the message to send now, or None. Billing first."""
        m = self.durable.peek()
        if m is not None:
            return m[0], m[1], BILLING
        if self.state:
            return self.state[0][0], self.state[0][1], STATE
        if self.live:
            return self.live[0][0], self.live[0][1], LIVE
        return None

    def done(self, m):
        """m (as next() gave it) reached the broker: forget it."""
        topic, payload, kind = m
        if kind == BILLING:
            self.durable.pop()
            return
        slots = self.state if kind == STATE else self.live
        for i in range(len(slots)):
            if slots[i][0] == topic:
                if slots[i][1] is payload:  # not replaced by a newer one meanwhile
                    slots.pop(i)
                return


def _latest(slots, topic, payload):
    """Put payload in topic's slot; True when it replaced a waiting one."""
    for slot in slots:
        if slot[0] == topic:
            slot[1] = payload
            return True
    slots.append([topic, payload])
    return False


class RamQueue:
    """The durable queue's interface in RAM, bounded: used only when the flash
    file system cannot be opened at boot, so billing messages still leave in
    order and acknowledged (they just do not survive a reboot then)."""

    def __init__(self, max_messages=24):
        self.max_messages = max_messages
        self.q = []
        self.dropped = 0
        self.torn = 0

    def __len__(self):
        return len(self.q)

    def put(self, topic, payload):
        if len(self.q) >= self.max_messages:
            self.q.pop(0)
            self.dropped += 1
        self.q.append((topic, payload))

    def peek(self):
        return self.q[0] if self.q else None

    def pop(self):
        if self.q:
            self.q.pop(0)
