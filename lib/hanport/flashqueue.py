"""A durable FIFO of the billing messages (List 3, <base>/hour) on the Storage port.

    q = FlashQueue(storage)          # restores itself from what storage holds
    q.put(topic, payload)            # one append; when full the OLDEST go (q.dropped)
    q.peek() -> (topic, payload) or None
    q.pop()                          # after the PUBACK: removes what peek() gave
    len(q), q.dropped, q.torn, q.flash_bytes

On flash: segment files "q.<n>", appended to and never rewritten, and a pointer
"qhead" to the oldest message not yet acknowledged. n is the sequence number of
the segment's first record, so names sort in queue order and every record in a
segment numbers at least n. A record:

    0 magic 0xA5 | 1 length n (u16, bytes after the crc) | 3 crc16 of those n bytes
    5 sequence number (u32) | 9 topic length (u16) | 11 topic | payload

(all big-endian). A power cut during an append leaves a torn record at the end
of the last segment: restore finds it by its crc, counts it in `torn`, and the
next put starts a new segment, so nothing valid ever follows garbage (a last
segment holding nothing valid is removed). Damaged bytes inside a segment (a
record that fails its crc) are skipped by searching for the next valid record;
each damaged stretch counts once in `torn`, when delivery reaches it.

"qhead" holds (segment, offset, crc16), replaced atomically by Storage.write on each
pop. When a pop empties a segment the segment file is removed instead: a
pointer naming a missing segment means "the next segment, from its start".

RAM: a dozen integers plus the cached head message; the queue itself stays on
flash. Restore reads the pointer, lists the segment names, and reads the last
segment to find its valid end and the head segment from the pointer: at most
two segments, whatever the queue holds.

Any OSError from the storage propagates to the caller with the queue's state
consistent (put: the message may or may not be stored; pop: not advanced, the
message comes again; the constructor: try again). `dropped` and `torn` count
since this object was made; len() is exact unless damage lies ahead (then it
may count one too many per damaged stretch until delivery gets there).
"""
from struct import pack, pack_into, unpack

from hanport.crc16 import crc16

MAGIC = 0xA5
_MAGIC = b"\xa5"
HEADER = 5  # magic, length, crc
FIXED = 6  # sequence number and topic length, inside the crc
SEG = "q."
HEAD = "qhead"
SCAN = 64  # bytes read at a time when looking for the next record after damage


class FlashQueue:
    def __init__(self, storage, max_bytes=384 * 1024, segment_bytes=16 * 1024):
        if segment_bytes < 256 or max_bytes < 2 * segment_bytes:
            raise ValueError("need segment_bytes >= 256 and max_bytes >= 2 segments")
        self._st = storage
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dropped = 0  # messages dropped, oldest first, to stay within max_bytes
        self.torn = 0  # damaged stretches found (power cut mid-append, bad flash)
        self._msg = None  # cached head (topic, payload)
        self._mlen = 0  # its record's length on flash
        self._mseq = 0  # its sequence number
        self._restore()

    # -- public -----------------------------------------------------------

    def __len__(self):
        # exact unless damaged records or failed appends lie ahead (then an
        # upper bound); peek() is None exactly when nothing is left
        return self._next - self._hseq

    def put(self, topic, payload):
        tl = len(topic)
        size = HEADER + FIXED + tl + len(payload)
        if size > self.segment_bytes or tl > 0xFFFF:
            raise ValueError("message larger than a segment")
        seq = self._next
        t, ts = self._t, self._ts
        if not self._open or ts + size > self.segment_bytes:
            t, ts = seq, 0  # a new segment, named after its first record
        while self._bytes + size > self.max_bytes and self._h < t:
            self._drop_head(t)
        rec = bytearray(size)
        pack_into(">BHHIH", rec, 0, MAGIC, size - HEADER, 0, seq, tl)
        rec[11:11 + tl] = topic
        rec[11 + tl:] = payload
        pack_into(">H", rec, 3, crc16(rec, HEADER))
        if t != self._t:
            self._close()  # remember where the old tail's valid data ends
            self._t = t
        self._ts = ts
        self._next = seq + 1  # taken even if the append fails: numbers stay unique
        name = SEG + str(t)
        try:
            self._st.append(name, rec)
        except OSError:
            self._close()  # whatever reached flash is never appended after
            self._bytes += self._st.size(name) - ts
            raise
        self._bytes += size
        self._ts = ts + size
        self._open = self._ts < self.segment_bytes

    def peek(self):
        if self._msg is None:
            self._find()
        return self._msg

    def pop(self):
        """Remove the message peek() returned. Does nothing when there is none,
        or when a put() since then dropped it to make room."""
        if self._msg is None:
            return
        h = self._h
        off = self._ho + self._mlen
        if off >= self._limit(h) and h < self._t:
            # the segment's last message: removing the file records the pop
            nxt = self._after(h, self._t)
            self._forget(h)
            self._h, self._ho = nxt, 0
        else:
            p = pack(">II", h, off)
            self._st.write(HEAD, p + pack(">H", crc16(p)))
            self._ho = off
        self._hseq = self._mseq + 1
        self._msg = None

    @property
    def flash_bytes(self):
        """Bytes the queue's segment files take (acknowledged ones included
        until their segment is removed)."""
        return self._bytes

    # -- restore ------------------------------------------------------------

    def _restore(self):
        st = self._st
        p = st.read(HEAD)
        ph = po = 0
        if p and len(p) == 10 and crc16(p, 0, 8) == unpack(">H", p[8:])[0]:
            ph, po = unpack(">II", p[:8])
        # else (none yet, or lost between FAT's remove and rename): from the
        # oldest segment's start, which may deliver some messages twice
        h = t = -1
        total = 0
        for name in st.names(SEG):
            try:
                n = int(name[len(SEG):])
            except ValueError:
                continue
            if n < ph:
                st.remove(name)  # emptied before the pointer moved past it
                continue
            total += st.size(name)
            if h < 0 or n < h:
                h = n
            if n > t:
                t = n
        self._bytes = total
        self._cut = -1  # a closed segment with garbage after _cutend
        self._cutend = 0
        if t < 0:  # nothing on flash: the first put starts a segment after the pointer
            self._h = self._t = ph + 1
            self._ho = self._ts = 0
            self._open = False
            self._next = self._hseq = ph + 1
            return
        self._h, self._t = h, t
        self._ho = po if h == ph else 0
        # the last segment: where its valid records end, and the last number used
        name = SEG + str(t)
        size = st.size(name)
        off = 0
        end = 0
        last = -1
        while off < size:
            r = self._load(name, off, size, t)
            if r is None:
                off = self._resync(name, off + 1, size, t)
                if off < 0:
                    break
                continue  # damage inside: counted when peek reaches it
            last = r
            off += self._mlen
            end = off
        if end < size:
            self.torn += 1  # the message being written when the power went
        self._ts = end
        self._open = end == size and end < self.segment_bytes
        self._next = last + 1
        if last < t:
            # nothing valid in it (a cut during a segment's first append): remove
            # it so its name and number are free for the next put
            self._next = t
            self._open = False
            if ph == t and po:
                self._next = t + 1  # the old pointer must not skip into a new q.<t>
            self._forget(t)
        if self._h == t and self._ho > end:
            self._ho = end
        self._hseq = self._h
        self._msg = None
        try:
            self._find()  # the head's number, so len() is right from the start
        except OSError:
            pass  # peek() tries again

    # -- reading ------------------------------------------------------------

    def _limit(self, seg):
        """Where the valid data of segment seg ends."""
        if seg == self._t:
            return self._ts
        if seg == self._cut:
            return self._cutend
        return self._st.size(SEG + str(seg))

    def _find(self):
        """Load the oldest valid record into the cache, skipping damage and
        finished segments; None when the queue is empty."""
        self._msg = None
        while True:
            h = self._h
            name = SEG + str(h)
            limit = self._limit(h)
            off = self._ho
            if off < limit:
                r = self._load(name, off, limit, h)
                if r is not None:
                    self._mseq = self._hseq = r
                    return
                nxt = self._resync(name, off + 1, limit, h)
                if nxt >= 0:
                    self.torn += 1
                    self._ho = nxt
                    continue
                if not self._cut_short(name, off, limit):
                    self.torn += 1  # (a torn tail was counted by the restore that found it)
                if h == self._t:
                    self._ts = self._ho  # garbage up to the tail's end: never append after it
                    self._open = False
            if h >= self._t:
                self._hseq = self._next
                return
            nxt = self._after(h, self._t)
            self._forget(h)
            self._h, self._ho = nxt, 0

    def _load(self, name, off, limit, lo):
        """The sequence number of the valid record at off (its message put in
        self._msg, its length in self._mlen), or None."""
        st = self._st
        hdr = st.read_at(name, off, HEADER)
        if len(hdr) < HEADER or hdr[0] != MAGIC:
            return None
        magic, n, crc = unpack(">BHH", hdr)
        if n < FIXED or off + HEADER + n > limit:
            return None
        body = st.read_at(name, off + HEADER, n)
        if len(body) != n or crc16(body) != crc:
            return None
        seq, tl = unpack(">IH", body[:FIXED])
        if seq < lo or FIXED + tl > n:
            return None
        self._mlen = HEADER + n
        self._msg = (body[FIXED:FIXED + tl], body[FIXED + tl:])
        return seq

    def _cut_short(self, name, off, limit):
        """Is the data at off the start of a record that runs past limit (the
        shape a power cut mid-append leaves)?"""
        hdr = self._st.read_at(name, off, HEADER)
        return len(hdr) < HEADER or (hdr[0] == MAGIC and off + HEADER + unpack(">BHH", hdr)[1] > limit)

    def _resync(self, name, off, limit, lo):
        """Offset of the next valid record at or after off, or -1."""
        while off < limit:
            chunk = self._st.read_at(name, off, min(SCAN, limit - off))
            if not chunk:
                break
            i = chunk.find(_MAGIC)
            while i >= 0:
                if self._load(name, off + i, limit, lo) is not None:
                    self._msg = None
                    return off + i
                i = chunk.find(_MAGIC, i + 1)
            off += len(chunk)
        self._msg = None
        return -1

    # -- segments -------------------------------------------------------------

    def _after(self, seg, best):
        """The segment following seg: the smallest name between them, else best."""
        for name in self._st.names(SEG):
            try:
                n = int(name[len(SEG):])
            except ValueError:
                continue
            if seg < n < best:
                best = n
        return best

    def _forget(self, seg):
        name = SEG + str(seg)
        size = self._st.size(name)
        self._st.remove(name)
        self._bytes -= size
        if seg == self._cut:
            self._cut = -1

    def _drop_head(self, new_tail):
        """Make room: remove the oldest segment, counting the messages in it
        not yet delivered."""
        h = self._h
        nxt = self._after(h, new_tail)
        self._forget(h)
        self.dropped += nxt - self._hseq if nxt > self._hseq else 0
        self._h, self._ho = nxt, 0
        self._hseq = nxt
        self._msg = None

    def _close(self):
        """No more appends to the tail; peek stops at its valid end."""
        self._open = False
        self._cut = self._t
        self._cutend = self._ts
