"""Streaming HDLC deframer for the HAN port (frame format type 3).

Frames are found by their length field, not by searching for flags: the HAN
port does no byte stuffing, so 0x7E and 0x7D occur inside real frames. One
0x7E may close a frame and open the next. A candidate frame is dropped as soon
as its header check fails, so garbage or a damaged frame costs at most the
bytes it claims, and the bytes after it are scanned again: the next good
frame is never lost.

The buffers are allocated once and never grow. The one for reassembling a
segmented APDU waits for the first segmented frame (Norwegian meters send
none, so it would be 2 KB of heap held for nothing) and is then kept. On
MicroPython bytes are copied with index loops, which allocate nothing (a
slice would allocate ~48 bytes each time).
"""
import sys

from hanport.crc16 import crc16

FLAG = 0x7E

# CPython copies a slice in C; MicroPython would allocate for the slice,
# so there an index loop copies instead (it allocates nothing).
_SLICE_COPY = sys.implementation.name != "micropython"

# Every way a byte or frame can be rejected; each has its own counter.
ERRORS = (
    "garbage",    # bytes outside any frame
    "format",     # a flag not followed by a type 3 frame header
    "oversize",   # length field above max_frame, or a reassembled APDU above max_apdu
    "hcs",        # header check sequence wrong
    "end_flag",   # no 0x7E where the length field says the frame ends
    "fcs",        # frame check sequence wrong
    "short",      # the stream ended (or went idle) inside a frame
    "segmented",  # a segmented APDU whose remaining segments never came
    "llc",        # information field without the E6 E7 00 LLC header
    "sink",       # the consumer of frames raised an exception
)

_NEED_MORE = None
_OK = "ok"


class Deframer:
    """Feed it bytes; it calls sink(apdu, frame) for each good frame.

    apdu is a memoryview of the information field after the LLC header
    (reassembled across segments); frame is a memoryview of the last HDLC
    frame, flags included. Both are valid only during the call.
    """

    def __init__(self, sink, max_frame=1024, max_apdu=2048):
        self.sink = sink
        self.max_frame = max_frame  # largest length field accepted
        self.buf = bytearray(max_frame + 2)  # a whole frame with both flags
        self.mv = memoryview(self.buf)
        self.n = 0  # bytes held in buf
        self.need = 3  # buf must hold this many bytes before a scan helps
        self.max_apdu = max_apdu
        self.apdu = None  # reassembly buffer (max_apdu bytes): made by the first segment
        self.apdu_mv = None
        self.apdu_len = 0  # bytes of a segmented APDU collected so far
        self.errors = {}
        for name in ERRORS:
            self.errors[name] = 0
        self.frames = 0
        self.last_error = None
        # Set by _check for the frame it accepted.
        self._info = 0
        self._end = 0
        self._more = False

    def feed(self, data, n=-1):
        """Take the first n bytes of data (all of it when n is -1)."""
        if n < 0:
            n = len(data)
        buf = self.buf
        cap = len(buf)
        i = 0
        while i < n:
            w = self.n
            k = cap - w
            if k > n - i:
                k = n - i
            if k == 0:  # cannot happen while need <= capacity; never spin
                self._error("oversize")
                self.n = 0
                self.need = 3
                continue
            if _SLICE_COPY:
                buf[w:w + k] = data[i:i + k]
                w += k
            else:
                for j in range(i, i + k):
                    buf[w] = data[j]
                    w += 1
            self.n = w
            i += k
            if w >= self.need:
                self._scan()

    def end(self):
        """The stream stopped (or went idle): drop what cannot complete.

        A frame cut short may hide good frames behind it (they sat in the
        buffer while it waited for its claimed length), so after dropping it
        the rest is scanned again.
        """
        buf = self.buf
        while self.n > 1 or (self.n == 1 and buf[0] != FLAG):  # a lone flag is a closing one
            self._scan()
            n = self.n
            if n == 0 or (n == 1 and buf[0] == FLAG):
                break
            self._error("short")  # after a scan, what is left starts with a flag
            for j in range(n - 1):
                buf[j] = buf[j + 1]
            self.n = n - 1
        self.n = 0
        self.need = 3
        if self.apdu_len:
            self.apdu_len = 0
            self._error("segmented")

    def _error(self, name):
        self.errors[name] += 1
        self.last_error = name

    def _scan(self):
        buf = self.buf
        n = self.n
        s = 0
        while s < n:
            if buf[s] != FLAG:
                f = buf.find(b"\x7e", s, n)
                if f < 0:
                    f = n
                self.errors["garbage"] += f - s
                s = f
                continue
            if s + 1 < n and buf[s + 1] == FLAG:
                s += 1  # two flags in a row (one closes, one opens): legal
                continue
            result = self._check(s, n)
            if result is _NEED_MORE:
                break
            if result is _OK:
                self.frames += 1
                self._deliver(s)
                s = self._end  # the closing flag may open the next frame
            else:
                self._error(result)
                if self.apdu_len and (result == "fcs" or result == "end_flag"):
                    self.apdu_len = 0  # a segment was lost: the APDU is void
                    self._error("segmented")
                s += 1  # resynchronise on the next flag after this one
        # Keep the unfinished tail at the front of the buffer.
        if s:
            k = n - s
            for j in range(k):
                buf[j] = buf[s + j]
            self.n = k
            self.need -= s
        if s >= n:
            self.need = 3

    def _check(self, s, n):
        """Judge the candidate frame whose opening flag is at s.

        Returns _OK, _NEED_MORE (self.need says how many bytes), or the name
        of the error. The header is checked before the whole frame arrives.
        """
        buf = self.buf
        if n < s + 3:
            self.need = s + 3
            return _NEED_MORE
        b1 = buf[s + 1]
        if b1 & 0xF0 != 0xA0:
            return "format"
        length = ((b1 & 0x07) << 8) | buf[s + 2]
        if length > self.max_frame:
            return "oversize"
        end = s + 1 + length  # index of the closing flag
        p = s + 3
        for _ in range(2):  # destination and source address, 1 to 4 bytes
            k = 0
            while True:
                if p >= n:
                    self.need = p + 1
                    return _NEED_MORE
                k += 1
                last = buf[p] & 1
                p += 1
                if last:
                    break
                if k == 4:
                    return "format"
        p += 1  # control
        # HCS, an information field of at least the LLC header, FCS.
        if p + 2 + 3 + 2 > end:
            return "format"
        if n < p + 2:
            self.need = p + 2
            return _NEED_MORE
        if crc16(buf, s + 1, p) != buf[p] | (buf[p + 1] << 8):
            return "hcs"
        if n < end + 1:
            self.need = end + 1
            return _NEED_MORE
        if buf[end] != FLAG:
            return "end_flag"
        if crc16(buf, s + 1, end - 2) != buf[end - 2] | (buf[end - 1] << 8):
            return "fcs"
        self._info = p + 2
        self._end = end
        self._more = b1 & 0x08
        return _OK

    def _deliver(self, s):
        buf = self.buf
        info = self._info
        stop = self._end - 2
        llc = buf[info] == 0xE6 and buf[info + 1] == 0xE7 and buf[info + 2] == 0x00
        if self.apdu_len and llc:
            # A new APDU began before the last segment of the previous one.
            self.apdu_len = 0
            self._error("segmented")
        if self._more or self.apdu_len:
            if not self._collect(info, stop):
                return
            if self._more:
                return
            apdu = self.apdu
            got = self.apdu_len
            self.apdu_len = 0
            if not (apdu[0] == 0xE6 and apdu[1] == 0xE7 and apdu[2] == 0x00):
                self._error("llc")
                return
            self._hand_over(self.apdu_mv[3:got], s)
            return
        if not llc:
            self._error("llc")
            return
        self._hand_over(self.mv[info + 3:stop], s)

    def _collect(self, start, stop):
        got = self.apdu_len
        apdu = self.apdu
        if apdu is None:  # the first segmented frame since start-up
            apdu = self.apdu = bytearray(self.max_apdu)
            self.apdu_mv = memoryview(apdu)
        if got + stop - start > len(apdu):
            self.apdu_len = 0
            self._error("oversize")
            return False
        buf = self.buf
        for j in range(start, stop):
            apdu[got] = buf[j]
            got += 1
        self.apdu_len = got
        return True

    def _hand_over(self, apdu, s):
        try:
            self.sink(apdu, self.mv[s:self._end + 1])
        except Exception:  # a consumer's bug must not stop the stream
            self._error("sink")
