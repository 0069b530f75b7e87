"""Native protocol codec: pure functions over bytes, driven by the FRAMES table. No I/O, no clock.

``decode`` never raises on untrusted bytes: it returns a ``Decoded``, ``NeedMore``, ``TooLarge`` or
``Malformed``. ``encode`` raises ``ValueError`` for values that do not fit their field (a programming error).
"""
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Union

from .frames import FRAME_BY_CODE, FRAMES, HEADER_BYTES, MAX_U53, AddrKind


@dataclass(frozen=True)
class Address:
    """Where a message goes: kind is 'user' (id), 'name' (name), 'all', 'server' or 'topic' (name)."""

    kind: str
    id: int = 0
    name: str = ""

    @staticmethod
    def user(user_id: int) -> "Address":
        return Address("user", id=user_id)

    @staticmethod
    def named(name: str) -> "Address":
        return Address("name", name=name)

    @staticmethod
    def all() -> "Address":
        return Address("all")

    @staticmethod
    def server() -> "Address":
        return Address("server")

    @staticmethod
    def topic(topic: str) -> "Address":
        return Address("topic", name=topic)

    @staticmethod
    def parse(text: str) -> "Address":
        """'ALL', 'SERVER', '#topic', '42' (a user id) or a user name."""
        if text == "ALL":
            return Address.all()
        if text == "SERVER":
            return Address.server()
        if text.startswith("#") and len(text) > 1:
            return Address.topic(text[1:])
        if text.isdigit():
            return Address.user(int(text))
        return Address.named(text)


@dataclass
class Message:
    seq: int = 0
    msgId: int = 0
    sender: int = 0  # "from" on the wire; a Python keyword
    fromName: str = ""
    to: int = 0
    topic: str = ""
    kind: int = 0
    flags: int = 0
    ts: int = 0
    expiresAt: int = 0
    fileId: str = ""
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class User:
    id: int = 0
    name: str = ""
    protocol: str = ""
    since: int = 0
    lastSeen: int = 0


@dataclass
class Item:
    name: str = ""
    count: int = 0


@dataclass
class Frame:
    """One frame: its name (e.g. 'SEND'), its correlation number and its fields by name."""

    type: str
    corr: int = 0
    fields: Dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


@dataclass
class Decoded:
    frame: Frame
    size: int  # bytes consumed


@dataclass
class NeedMore:
    pass


@dataclass
class TooLarge:
    """The frame is larger than the limit; ``size`` bytes may be skipped and the stream goes on."""

    size: int
    corr: int
    type: int


@dataclass
class Malformed:
    detail: str
    corr: int


DecodeResult = Union[Decoded, NeedMore, TooLarge, Malformed]


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, buf: bytes, start: int, end: int) -> None:
        self.buf = buf
        self.off = start
        self.end = end

    def need(self, n: int) -> None:
        if self.off + n > self.end:
            raise _Bad("field runs past the end of the frame at byte %d" % self.off)

    def u8(self) -> int:
        self.need(1)
        v = self.buf[self.off]
        self.off += 1
        return v

    def u16(self) -> int:
        self.need(2)
        (v,) = struct.unpack_from(">H", self.buf, self.off)
        self.off += 2
        return int(v)

    def u32(self) -> int:
        self.need(4)
        (v,) = struct.unpack_from(">I", self.buf, self.off)
        self.off += 4
        return int(v)

    def u53(self) -> int:
        self.need(8)
        (v,) = struct.unpack_from(">Q", self.buf, self.off)
        self.off += 8
        if v > MAX_U53:
            raise _Bad("integer larger than 2^53-1")
        return int(v)

    def str_(self) -> str:
        n = self.u16()
        self.need(n)
        raw = bytes(self.buf[self.off:self.off + n])
        self.off += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("string is not valid UTF-8")

    def bytes_(self) -> bytes:
        n = self.u32()
        self.need(n)
        raw = bytes(self.buf[self.off:self.off + n])
        self.off += n
        return raw

    def addr(self) -> Address:
        k = self.u8()
        if k == AddrKind.USER:
            return Address.user(self.u32())
        if k == AddrKind.NAME:
            return Address.named(self.str_())
        if k == AddrKind.ALL:
            return Address.all()
        if k == AddrKind.SERVER:
            return Address.server()
        if k == AddrKind.TOPIC:
            return Address.topic(self.str_())
        raise _Bad("unknown address kind %d" % k)

    def msg(self) -> Message:
        return Message(seq=self.u53(), msgId=self.u53(), sender=self.u32(), fromName=self.str_(), to=self.u32(),
                       topic=self.str_(), kind=self.u8(), flags=self.u8(), ts=self.u53(), expiresAt=self.u53(),
                       fileId=self.str_(), body=self.bytes_())

    def user(self) -> User:
        return User(id=self.u32(), name=self.str_(), protocol=self.str_(), since=self.u53(), lastSeen=self.u53())

    def item(self) -> Item:
        return Item(name=self.str_(), count=self.u32())

    def list_(self, item: Callable[[], Any]) -> List[Any]:
        return [item() for _ in range(self.u16())]

    def field(self, t: str) -> Any:
        if t == "u8":
            return self.u8()
        if t == "u16":
            return self.u16()
        if t == "u32":
            return self.u32()
        if t == "u53":
            return self.u53()
        if t == "str":
            return self.str_()
        if t == "bytes":
            return self.bytes_()
        if t == "addr":
            return self.addr()
        if t == "msg":
            return self.msg()
        if t == "msgs":
            return self.list_(self.msg)
        if t == "users":
            return self.list_(self.user)
        if t == "items":
            return self.list_(self.item)
        raise AssertionError(t)


def decode(buf: bytes, max_frame_bytes: int) -> DecodeResult:
    """Decode the first frame of ``buf``. ``max_frame_bytes`` bounds the whole frame, length prefix included."""
    if len(buf) < 4:
        return NeedMore()
    (length,) = struct.unpack_from(">I", buf, 0)
    size = length + 4
    if length < HEADER_BYTES - 4:
        return Malformed("frame length %d is shorter than its header" % length, 0)
    if size > max_frame_bytes:
        type_ = buf[4] if len(buf) >= 5 else 0
        corr = struct.unpack_from(">I", buf, 5)[0] if len(buf) >= HEADER_BYTES else 0
        return TooLarge(size, corr, type_)
    if len(buf) < size:
        return NeedMore()
    code = buf[4]
    (corr,) = struct.unpack_from(">I", buf, 5)
    name = FRAME_BY_CODE.get(code)
    if name is None:
        return Malformed("unknown frame type 0x%x" % code, corr)
    r = _Reader(buf, HEADER_BYTES, size)
    fields: Dict[str, Any] = {}
    try:
        for fname, t in FRAMES[name][2]:
            fields[fname] = r.field(t)
    except _Bad as e:
        return Malformed("%s: %s" % (name, e), corr)
    if r.off != size:
        return Malformed("%s: %d bytes left over after the last field" % (name, size - r.off), corr)
    return Decoded(Frame(name, corr, fields), size)


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def u8(self, v: int) -> None:
        self._int(v, 0xFF, ">B")

    def u16(self, v: int) -> None:
        self._int(v, 0xFFFF, ">H")

    def u32(self, v: int) -> None:
        self._int(v, 0xFFFFFFFF, ">I")

    def u53(self, v: int) -> None:
        self._int(v, MAX_U53, ">Q")

    def _int(self, v: int, top: int, fmt: str) -> None:
        if not isinstance(v, int) or v < 0 or v > top:
            raise ValueError("%r does not fit %s" % (v, fmt))
        self.out += struct.pack(fmt, v)

    def str_(self, s: str) -> None:
        raw = s.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise ValueError("string longer than 65535 bytes")
        self.u16(len(raw))
        self.out += raw

    def bytes_(self, b: bytes) -> None:
        self.u32(len(b))
        self.out += b

    def addr(self, a: Address) -> None:
        if a.kind == "user":
            self.u8(AddrKind.USER)
            self.u32(a.id)
        elif a.kind == "name":
            self.u8(AddrKind.NAME)
            self.str_(a.name)
        elif a.kind == "all":
            self.u8(AddrKind.ALL)
        elif a.kind == "server":
            self.u8(AddrKind.SERVER)
        elif a.kind == "topic":
            self.u8(AddrKind.TOPIC)
            self.str_(a.name)
        else:
            raise ValueError("unknown address kind %r" % a.kind)

    def msg(self, m: Message) -> None:
        self.u53(m.seq)
        self.u53(m.msgId)
        self.u32(m.sender)
        self.str_(m.fromName)
        self.u32(m.to)
        self.str_(m.topic)
        self.u8(m.kind)
        self.u8(m.flags)
        self.u53(m.ts)
        self.u53(m.expiresAt)
        self.str_(m.fileId)
        self.bytes_(m.body)

    def field(self, t: str, v: Any) -> None:
        if t in ("u8", "u16", "u32", "u53"):
            getattr(self, t)(v)
        elif t == "str":
            self.str_(v)
        elif t == "bytes":
            self.bytes_(bytes(v))
        elif t == "addr":
            self.addr(v)
        elif t == "msg":
            self.msg(v)
        elif t == "msgs":
            self.u16(len(v))
            for m in v:
                self.msg(m)
        elif t == "users":
            self.u16(len(v))
            for u in v:
                self.u32(u.id)
                self.str_(u.name)
                self.str_(u.protocol)
                self.u53(u.since)
                self.u53(u.lastSeen)
        elif t == "items":
            self.u16(len(v))
            for i in v:
                self.str_(i.name)
                self.u32(i.count)
        else:
            raise AssertionError(t)


def encode(frame: Frame) -> bytes:
    """Encode one frame; every field of its table entry must be present in ``frame.fields``."""
    spec = FRAMES.get(frame.type)
    if spec is None:
        raise ValueError("unknown frame %r" % frame.type)
    w = _Writer()
    w.u8(spec[0])
    w.u32(frame.corr)
    for fname, t in spec[2]:
        if fname not in frame.fields:
            raise ValueError("%s: missing field %s" % (frame.type, fname))
        w.field(t, frame.fields[fname])
    return struct.pack(">I", len(w.out)) + bytes(w.out)


def make(type_: str, corr: int = 0, **fields: Any) -> Frame:
    """A frame with its fields given as keywords: ``make('ACK', 0, seq=5)``."""
    return Frame(type_, corr, dict(fields))


class FrameReader:
    """Streaming decoder for one connection: feed chunks, get results; handles split and coalesced frames."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.buf = b""
        self.skipping = 0

    def push(self, chunk: bytes) -> List[Union[Decoded, TooLarge, Malformed]]:
        self.buf += chunk
        out: List[Union[Decoded, TooLarge, Malformed]] = []
        while True:
            if self.skipping:
                n = min(self.skipping, len(self.buf))
                self.skipping -= n
                self.buf = self.buf[n:]
                if self.skipping:
                    break
            d = decode(self.buf, self.max_frame_bytes)
            if isinstance(d, Decoded):
                out.append(d)
                self.buf = self.buf[d.size:]
                continue
            if isinstance(d, NeedMore):
                break
            out.append(d)
            if isinstance(d, Malformed):
                self.buf = b""
                break
            self.skipping = d.size
        return out


