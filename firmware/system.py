"""System (see hanport.ports): heap and reset cause, for diagnostics."""
import gc

import machine

_CAUSES = (
    ("PWRON_RESET", "power_on"),  # also a brownout: the meter's supply sagged
    ("HARD_RESET", "hard_reset"),  # machine.reset() or a panic; the EN button reads as power_on
    ("WDT_RESET", "watchdog"),
    ("DEEPSLEEP_RESET", "deep_sleep"),
    ("SOFT_RESET", "soft_reset"),
)


class System:
    def __init__(self):
        cause = machine.reset_cause()
        self._cause = "unknown_%d" % cause
        for const, name in _CAUSES:
            if getattr(machine, const, None) == cause:
                self._cause = name
                break

    def free_heap(self):
        return gc.mem_free()

    def reset_cause(self):
        return self._cause
