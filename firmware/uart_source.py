"""The HAN port as a ByteSource (see hanport.ports): UART receive only.

Buffer sizing: the main loop promises that no call blocks for more than 10 s
(MQTT connect/publish timeouts). During such a call in C, soft IRQs do not
run, so the ESP-IDF driver's rxbuf must hold everything the meter sends
meanwhile: 2400 baud at 11 bits a byte (8E1) is about 218 bytes/s, so 10 s
is about 2.2 kB. rxbuf is 4096 for headroom. The ring gets the same size: it
holds what the IRQ handler moved while the loop was busy in Python code.
"""
import machine

from hanport.ring import Ring

RXBUF = 4096
RING_SIZE = 4096
SCRATCH = 256  # one driver read; a List 3 frame (~400 bytes) takes two

PARITY = {"E": 0, "N": None, "O": 1}  # MicroPython: parity=0 is EVEN, 1 is odd


class UartSource:
    def __init__(self, uart_id=2, rx=16, tx=17, baud=2400, parity="E", invert=False,
                 rxbuf=RXBUF, ring_size=RING_SIZE):
        UART = machine.UART
        # tx must be passed (UART1's default pins are the flash pins), and the
        # driver would hold it idle-high. The meter accepts nothing on the HAN
        # port, so the pin is handed back to GPIO as an input right away:
        # selecting the GPIO function detaches the UART's TX signal, so the
        # pin is never driven, even if someone wires it.
        self._uart = UART(uart_id, baudrate=baud, bits=8, parity=PARITY[parity], stop=1,
                          rx=rx, tx=tx, rxbuf=rxbuf, timeout=0, timeout_char=0,
                          invert=UART.INV_RX if invert else 0)
        self.tx_pin = machine.Pin(tx, machine.Pin.IN)
        self._ring = Ring(ring_size)
        self._scratch = bytearray(SCRATCH)
        self._busy = False  # the loop is using the ring: the handler stays out
        self.irq_errors = 0
        # Bind once: creating the bound method in the handler path would allocate.
        self._handler = self._on_rx
        self._uart.irq(self._handler, trigger=UART.IRQ_RXIDLE)

    @property
    def overflows(self):
        return self._ring.overflows

    def _drain(self):
        uart = self._uart
        scratch = self._scratch
        n = uart.readinto(scratch)  # None when nothing is waiting
        while n:
            self._ring.put_from(scratch, n)
            n = uart.readinto(scratch)

    def _on_rx(self, _uart):
        # Soft IRQ: runs between the loop's bytecodes, so it must not touch the
        # ring while readinto() below is half way through. Bytes it leaves
        # stay in the driver for the loop's next drain. Exceptions in soft
        # handlers are printed and swallowed by MicroPython: count them.
        if self._busy:
            return
        try:
            self._drain()
        except Exception:
            self.irq_errors += 1

    def readinto(self, buf):
        # Drain here too: the scheduler queue holds 8 callbacks and drops the
        # rest silently, so the loop must not depend on the IRQ firing.
        self._busy = True
        try:
            self._drain()
            return self._ring.readinto(buf)
        finally:
            self._busy = False

    def deinit(self):
        self._uart.irq(None)
        self._uart.deinit()
