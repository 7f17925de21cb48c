"""The HAN port as a ByteSource (see hanport.ports): UART receive only.

Buffer sizing: the main loop promises that no call blocks for more than 10 s
(MQTT connect/publish timeouts). During such a call in C, soft IRQs do not
run, so the ESP-IDF driver's rxbuf must hold everything the meter sends
meanwhile: 2400 baud at 11 bits a byte (8E1) is about 218 bytes/s, so 10 s
is about 2.2 kB. rxbuf is 4096 for headroom; it is in the system heap, not
the Python heap.

A drain moves no more than the ring has room for: what does not fit stays in
the driver's buffer until the loop reads. So the ring need not hold a stall's
worth of data (rxbuf does that); it only carries what the RXIDLE handler
moved between two turns of the loop, which reads it empty each turn: one
push (an Aidon List 3 is about 400 bytes) with room to spare. 512 bytes of
Python heap instead of 4096 (issue 9); ring and rxbuf together hold about
21 s of meter data before anything is lost. Once both are full the driver
drops bytes, which MicroPython does not report; `overflows` counts the times
both were found full (episodes of loss, not bytes).
"""
import machine

from hanport.ring import Ring

RXBUF = 4096
RING_SIZE = 512
SCRATCH = 256  # one driver read; a List 3 frame (~400 bytes) takes two
# The driver counts as full within one hardware FIFO (128 bytes on the ESP32)
# of rxbuf: its interrupt moves the FIFO into the buffer only when all of it fits.
FIFO = 128

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
        self.overflows = 0  # times the ring and the driver's buffer were found full
        self._full = False  # they were, at the last drain
        self._full_at = rxbuf - FIFO if rxbuf > FIFO else rxbuf
        self._any = getattr(self._uart, "any", None)  # bound once: no allocation later
        # Bind once: creating the bound method in the handler path would allocate.
        self._handler = self._on_rx
        self._uart.irq(self._handler, trigger=UART.IRQ_RXIDLE)

    def _drain(self):
        uart = self._uart
        scratch = self._scratch
        ring = self._ring
        room = ring.room()
        while room:
            # Never more than the ring takes: the rest waits in the driver.
            n = uart.readinto(scratch, SCRATCH if room > SCRATCH else room)
            if not n:  # None when nothing is waiting
                self._full = False
                return
            ring.put_from(scratch, n)
            room -= n
        # The ring is full: is the driver's buffer full too?
        full = self._any is not None and self._any() >= self._full_at
        if full and not self._full:
            self.overflows += 1  # from now on the driver drops meter bytes
        self._full = full

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
            n = self._ring.readinto(buf)
            if n:
                self._drain()  # refill the room just made from the driver's buffer
            return n
        finally:
            self._busy = False

    def deinit(self):
        self._uart.irq(None)
        self._uart.deinit()
