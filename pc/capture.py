"""Hex captures and pastes: from the lines a person pastes to HDLC frame candidates.

Portable: tools/hexdecode.py runs it under MicroPython too, and both must give
the same answers, so lines are handled as bytes (no decoding, no Unicode
whitespace rules; CPython's str.strip() removes more than MicroPython's) and
only a label is turned into text.

What a line may hold (blank lines and lines starting with # are skipped):
- `hex` or `label<TAB>hex`;
- bytes separated by spaces, commas, colons or semicolons, with or without a
  0x prefix (`0x7E, 0xA0, ...`), or no separators at all (`7ea02a41...`);
  brackets and braces of a pasted C or Python list are ignored;
- `hexdump -C` lines (`00000000  7e a0 2a 41 ...  |~.*A....|`) and `xxd`
  lines (`00000000: 7ea0 2a41 ...  ~.*A`): the offset and the text column
  are dropped.

The bytes of consecutive lines form one stream, cut into frames at their HDLC
length fields, so a frame may run over several lines, one line may hold two
frames, and a frame whose 0x7E flags were left out gets them back when its
length field fits. A new label, a blank or comment line, or (outside a hexdump)
a line that starts with 7E Ax while a frame waits for more bytes, ends that frame.
"""

FLAG = 0x7E
_WS = b" \t\r\n\x0b\x0c"
_HEXVAL = bytearray(b"\xff" * 256)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEXVAL[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEXVAL[_c] = 10 + _i
_SEP = bytearray(256)  # 1: separates bytes
for _c in b" \t\r\n\x0b\x0c,;:[](){}":
    _SEP[_c] = 1
del _i, _c
# Unicode spaces a web page or word processor puts into a paste (UTF-8), replaced
# by as many ASCII spaces so that byte positions stay those of the line.
_UNICODE_SPACES = tuple(bytes(b) for b in (
    (0xC2, 0xA0), (0xE1, 0x9A, 0x80), (0xE2, 0x80, 0x80), (0xE2, 0x80, 0x81), (0xE2, 0x80, 0x82),
    (0xE2, 0x80, 0x83), (0xE2, 0x80, 0x84), (0xE2, 0x80, 0x85), (0xE2, 0x80, 0x86),
    (0xE2, 0x80, 0x87), (0xE2, 0x80, 0x88), (0xE2, 0x80, 0x89), (0xE2, 0x80, 0x8A),
    (0xE2, 0x80, 0x8B), (0xE2, 0x80, 0xA8), (0xE2, 0x80, 0xA9), (0xE2, 0x80, 0xAF),
    (0xE2, 0x81, 0x9F), (0xE3, 0x80, 0x80), (0xEF, 0xBB, 0xBF)))


def strip(b):
    """b without leading and trailing ASCII whitespace (never Unicode spaces)."""
    i = 0
    j = len(b)
    while i < j and b[i] in _WS:
        i += 1
    while j > i and b[j - 1] in _WS:
        j -= 1
    return b[i:j]


def text(b):
    """Bytes as text: UTF-8 when valid, else every non-ASCII byte as '?'."""
    try:
        return b.decode()
    except UnicodeError:
        out = bytearray(b)
        for i in range(len(out)):
            if out[i] > 0x7E:
                out[i] = 0x3F
        return bytes(out).decode()


def _all_hex(b, start, end):
    if end <= start:
        return False
    for i in range(start, end):
        if _HEXVAL[b[i]] == 0xFF:
            return False
    return True


def looks_binary(data):
    """True when data (the start of a file) is a binary capture, not text."""
    head = data[:1024]
    control = 0
    for c in head:
        if c == 0:
            return True
        if (c < 0x20 and c not in _WS) or c == 0x7F:
            control += 1
    return control * 10 > len(head)


def _fcs_ok(buf, h, end):
    """Is the FCS right for the frame whose format field is at h and FCS ends at end?"""
    from hanport.crc16 import crc16

    return crc16(buf, h, end - 2) == buf[end - 2] | (buf[end - 1] << 8)


class Line:
    """One parsed line: .label (text or None), .data (bytes), .error (detail or None).

    .number is the line number, .start the position in the line where .data's
    first byte was written (for "byte N" in messages: .pos[i] is the 1-based
    byte position in the line of data byte i).
    """

    def __init__(self, number):
        self.number = number
        self.label = None
        self.data = b""
        self.pos = []
        self.error = None
        self.dump = False  # a hexdump -C or xxd line


def parse_line(raw, number, in_dump=False):
    """A Line, or None for a line to skip (blank, comment, a hexdump's last offset)."""
    line = raw
    for c in raw:
        if c > 0x7F:  # only then can a Unicode space be there
            for sp in _UNICODE_SPACES:
                if sp in line:
                    line = line.replace(sp, b"   "[:len(sp)])
            break
    s = strip(line)
    if not s or s[0] == 0x23:  # '#'
        return None
    base = line.find(s)  # offset of s in the line, for positions
    out = Line(number)
    tab = s.find(b"\t")
    if tab >= 0:
        out.label = text(strip(s[:tab]))
        base += tab + 1
        s = s[tab + 1:]
    # hexdump -C: 8 hex digits, two spaces, bytes, "  |text|";
    # xxd: 8 hex digits, ": ", groups of 4 digits, two spaces, text.
    end = len(s)
    if len(s) >= 8 and _all_hex(s, 0, 8) and out.label is None:
        if len(s) == 8 and in_dump:
            return None  # hexdump's closing offset: the length of the dump
        if s[8:10] == b"  ":
            out.dump = True
            bar = s.find(b"|", 8)
            if bar >= 0:
                end = bar
            s_from = 10
        elif s[8:10] == b": ":
            out.dump = True
            two = s.find(b"  ", 10)
            if two >= 0:
                end = two
            s_from = 10
        if out.dump:
            base += s_from
            s = s[s_from:end]
            end = len(s)
    if s == b"*" and in_dump:
        out.error = "line %d: hexdump's '*' stands for repeated lines: run hexdump -v" % number
        return out
    data = bytearray()
    pos = out.pos
    i = 0
    while i < end:
        if _SEP[s[i]]:
            i += 1
            continue
        j = i
        while j < end and not _SEP[s[j]]:
            j += 1
        k = i  # first hex digit of the token
        if j - i >= 2 and s[i] == 0x30 and (s[i + 1] == 0x78 or s[i + 1] == 0x58):  # 0x
            k = i + 2
            if j - k in (1, 2) and _all_hex(s, k, j):
                v = 0
                for q in range(k, j):
                    v = (v << 4) | _HEXVAL[s[q]]
                data.append(v)
                pos.append(base + i + 1)
                i = j
                continue
        if not _all_hex(s, k, j):
            out.error = "line %d byte %d: %s is not hex" % (number, base + i + 1, _quote(s[i:j]))
            return out
        if (j - k) % 2:
            out.error = "line %d byte %d: %s has an odd number of hex digits" % (
                number, base + i + 1, _quote(s[i:j]))
            return out
        for q in range(k, j, 2):
            data.append((_HEXVAL[s[q]] << 4) | _HEXVAL[s[q + 1]])
            pos.append(base + q + 1)
        i = j
    if not data and out.error is None:
        out.error = "line %d: no hex bytes after the label" % number
    out.data = bytes(data)
    return out


def _quote(b):
    t = text(b[:24])
    return "'" + t + ("...'" if len(b) > 24 else "'")


class Candidate:
    """What the paste holds at one place.

    label: text; frame: the bytes (flags re-added when they were left out), or
    None for a line that is not hex; error: None, or "hex", "flag", "format",
    "short", "length" when the paste itself says the frame is wrong; detail:
    where and why, for a person. at(k) names where byte k of frame came from.
    """

    def __init__(self, label, frame, error, detail, marks=None, shift=0):
        self.label = label
        self.frame = frame
        self.error = error
        self.detail = detail
        self._marks = marks  # [(frame index, Line)] of the lines the frame spans
        self._shift = shift  # frame index 0 is this data index of the first mark's line

    def at(self, k):
        """"line N byte B" of frame byte k (k counts the re-added flag too)."""
        if not self._marks:
            return self.label
        k -= self._shift
        line, first = self._marks[0][1], self._marks[0][0]
        for start, ln in self._marks:
            if start <= k:
                line, first = ln, start
        i = k - first
        if i < 0:
            i = 0
        if i >= len(line.pos):
            return "line %d (end)" % line.number
        return "line %d byte %d" % (line.number, line.pos[i])


class Paste:
    """Feed it lines (bytes); iterate .take() for the candidates found so far."""

    def __init__(self):
        self.buf = bytearray()
        self.lines = []  # [(index in buf, Line)] whose bytes are in buf
        self.pos = 0  # bytes of buf already judged
        self.out = []
        self.number = 0
        self.in_dump = False

    # -- where ------------------------------------------------------------

    def _line_at(self, i):
        found = self.lines[0]
        for mark in self.lines:
            if mark[0] <= i:
                found = mark
        return found

    def _label(self, start, end):
        first, line = self._line_at(start)
        last = self._line_at(end - 1 if end > start else start)[1]
        off = start - first
        if line.label is not None:
            name = line.label
        elif last is not line:
            name = "lines %d-%d" % (line.number, last.number)
        else:
            name = "line %d" % line.number
        if off:
            name += " @%d" % line.pos[off]
        return name

    def _where(self, i):
        first, line = self._line_at(i)
        i -= first
        if i >= len(line.data):
            return "line %d (end)" % line.number
        return "line %d byte %d" % (line.number, line.pos[i])

    def _marks(self, start, end):
        out = []
        for first, line in self.lines:
            if first < end and first + len(line.data) > start:
                out.append((first - start, line))
        return out

    def _emit(self, start, end, frame, error, detail, shift=0):
        self.out.append(Candidate(self._label(start, end), frame, error, detail,
                                  self._marks(start, end), shift))

    # -- lines ------------------------------------------------------------

    def feed(self, raw):
        """One line (bytes, with or without its newline)."""
        self.number += 1
        line = parse_line(raw, self.number, self.in_dump)
        if line is None:
            if not self.in_dump:
                self.end()
            return
        if line.error is not None:
            self.end()
            self.out.append(Candidate(line.label or "line %d" % line.number, None, "hex", line.error))
            return
        if line.label is not None or line.dump != self.in_dump:
            self.end()
        elif not line.dump and self.pos < len(self.buf) and self._opens(line.data) \
                and not (len(self.buf) - self.pos == 1 and self.buf[self.pos] == FLAG):
            self.end()  # a new frame starts on this line: the one waiting is cut short
        self.in_dump = line.dump
        self.lines.append((len(self.buf), line))
        self.buf.extend(line.data)
        self._scan(False)
        if len(self.lines) > 32:
            self._trim()

    def _trim(self):
        """Forget the lines already judged, so a long hexdump keeps a small buffer."""
        lines = self.lines
        k = 0
        while k + 1 < len(lines) and lines[k + 1][0] <= self.pos:
            k += 1
        if k:
            cut = lines[k][0]
            self.buf = self.buf[cut:]
            self.pos -= cut
            self.lines = [(start - cut, ln) for start, ln in lines[k:]]

    def end(self):
        """No more bytes for what is waiting (end of input, a blank line, a label)."""
        self._scan(True)
        self.buf = bytearray()
        self.lines = []
        self.pos = 0

    def take(self):
        out = self.out
        self.out = []
        return out

    @staticmethod
    def _opens(data):
        return len(data) >= 2 and data[0] == FLAG and data[1] & 0xF0 == 0xA0

    # -- frames -----------------------------------------------------------

    def _scan(self, final):
        buf = self.buf
        n = len(buf)
        while self.pos < n:
            i = self.pos
            b = buf[i]
            if b == FLAG:
                if i + 1 >= n:
                    if final:
                        self.pos = n  # a lone (closing) flag
                    return
                b1 = buf[i + 1]
                if b1 == FLAG:
                    self.pos = i + 1  # two flags: one closes, one opens
                    continue
                if b1 & 0xF0 != 0xA0:
                    j = self._resync(i + 1, final)
                    self._emit(i, j, bytes(buf[i:j]), "format",
                               "%s: 0x%02x after the 0x7E flag, a type 3 frame header is A0-A7"
                               % (self._where(i + 1), b1))
                    self.pos = j
                    continue
                off = 1
            elif b & 0xF0 == 0xA0:
                off = 0  # the flags were left out
            else:
                j = self._resync(i, final)
                self._emit(i, j, bytes(buf[i:j]), "flag",
                           "%s: 0x%02x where a frame starts with 0x7E (%d bytes that are not a frame)"
                           % (self._where(i), b, j - i))
                self.pos = j
                continue
            h = i + off  # the format field
            if h + 2 > n:
                if final:
                    self._emit(i, n, bytes(buf[i:n]), "short", "%s: the frame ends after %d bytes"
                               % (self._where(i), n - i))
                    self.pos = n
                return
            length = ((buf[h] & 0x07) << 8) | buf[h + 1]
            end = h + length  # just after the FCS
            if end > n:
                if final:
                    self._emit(i, n, bytes(buf[i:n]), "short",
                               "%s: the length field says %d bytes, the paste has %d"
                               % (self._where(i), length, n - h))
                    self.pos = n
                return
            if end == n and off and buf[end - 1] == FLAG and not _fcs_ok(buf, h, end):
                # 7E ... 7E one byte short of its length field (a byte lost on the
                # wire), not a frame whose closing flag was left out.
                if not final:
                    return
                self._emit(i, n, bytes(buf[i:n]), "short",
                           "%s: the length field says %d bytes, the paste has %d"
                           % (self._where(i), length, n - h - 1))
                self.pos = n
                return
            if end == n or buf[end] == FLAG or (off == 0 and buf[end] & 0xF0 == 0xA0):
                frame = bytearray(b"\x7e")
                frame.extend(buf[h:end])
                frame.append(FLAG)
                s = i
                if off and self._line_at(i)[1] is not self._line_at(h)[1]:
                    s = h  # the flag closed the frame before (end of the previous line)
                self._emit(s, end + 1 if end < n and buf[end] == FLAG else end,
                           bytes(frame), None, None, 1 - off + s - i)
                self.pos = end  # a closing flag may open the next frame
                if end + 1 < n and buf[end] == FLAG and buf[end + 1] != FLAG \
                        and buf[end + 1] & 0xF0 != 0xA0:
                    self.pos = end + 1  # it only closed this one
                continue
            j = self._resync(end, final)
            self._emit(i, j, bytes(buf[i:j]), "length",
                       "%s: the length field says %d bytes, then comes 0x%02x, not the closing 0x7E"
                       % (self._where(end), length, buf[end]))
            self.pos = j

    def _resync(self, i, final):
        """Index of the next place a frame may start (a 0x7E) at or after i, or the end."""
        buf = self.buf
        n = len(buf)
        while i < n:
            if buf[i] == FLAG and (i + 1 >= n or buf[i + 1] & 0xF0 == 0xA0 or buf[i + 1] == FLAG):
                return i
            i += 1
        return n


def candidates(lines):
    """Candidate for each frame (or damaged piece) in an iterable of lines (bytes or str)."""
    paste = Paste()
    for line in lines:
        if isinstance(line, str):
            line = line.encode()
        paste.feed(line)
        for c in paste.take():
            yield c
    paste.end()
    for c in paste.take():
        yield c


def split_lines(data):
    """The lines of a whole file (bytes), without their line ends."""
    return data.split(b"\n")


def hex_lines(lines):
    """(label, frame) for each frame; frame is None where a line is not hex."""
    for c in candidates(lines):
        yield c.label, c.frame


def read_hex(path):
    """[(label, frame)] of a hex capture file; ValueError names a line that is not hex."""
    with open(path, "rb") as f:
        data = f.read()
    frames = []
    for c in candidates(split_lines(data)):
        if c.frame is None:
            raise ValueError(c.detail)
        frames.append((c.label, c.frame))
    return frames


def shown(text):
    """text fit for a one-line message: control characters (C0 and C1), the
    Unicode line and paragraph separators and lone surrogates escaped. Written
    without str.isprintable, which MicroPython lacks, so hexdecode says the
    same on both."""
    out = []
    for ch in str(text):
        c = ord(ch)
        if c < 0x20 or 0x7F <= c < 0xA0:
            out.append("\\x%02x" % c)
        elif c in (0x2028, 0x2029) or 0xD800 <= c < 0xE000:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    return "".join(out)
