"""System (see hanport.ports): heap and reset cause, for diagnostics."""
import gc

import machine

try:
    import esp32  # only on the esp32 port
except ImportError:
    esp32 = None

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

    def largest_free_block(self):
        """The system heap's largest free block in bytes, or None off the esp32 port.

        Wi-Fi, lwIP and TLS allocate from the system heap (not the Python
        heap); a TLS handshake needs large contiguous blocks. idf_heap_info
        gives (total, free, largest_free_block, min_free) per region.
        """
        try:
            regions = esp32.idf_heap_info(esp32.HEAP_DATA)
        except AttributeError:  # no esp32 module (None), or one without the call
            return None
        best = None
        for region in regions:
            if best is None or region[2] > best:
                best = region[2]
        return best

    def reset_cause(self):
        return self._cause
