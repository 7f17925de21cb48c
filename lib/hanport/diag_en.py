"""English words for the meter state in diag; see hanport.diag._msg.

A module of its own so that its strings load only when a message is shown.
"""


def meter_msg(n, s):
    if n == 0:
        return ("no data from the meter for %d s - the HAN port may not be opened by the "
                "grid company yet: ask them (nettselskapet) to open it" % s)
    if n == 1:
        return ("no data from the meter for %d s - check the cable; some meters stop "
                "pushing until the grid company resets them" % s)
    if n == 2:
        return ("bytes from the meter but no valid frame for %d s - check the parity "
                "(Aidon 8E1, Kaifa and Kamstrup 8N1) and the M-Bus adapter" % s)
    return ("the meter encrypts its data: ask the grid company (nettselskapet) for "
            "the keys; this dongle cannot decrypt yet")
