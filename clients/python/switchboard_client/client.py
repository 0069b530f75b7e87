"""A blocking, thread-safe client for Switchboard's native protocol.

One reader thread decodes frames: a reply (corr of a pending request) wakes its caller, everything else
(DELIVER, RECEIPT, NOTICE, PRESENCE, RENAMED, CLOSING, ...) goes to ``events`` in arrival order.
Pushed messages and queued receipts must be acknowledged; ``auto_ack`` does it as they arrive.
"""
import itertools
import json
import random
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from .codec import Address, Decoded, Frame, FrameReader, Malformed, Message, TooLarge, User, encode, make
from .frames import (DEFAULT_MAX_FRAME_BYTES, ERROR_NAMES, KIND_NAMES, PROTOCOL_VERSION, SEND_STATUS, Kind, Op,
                     SendFlag, SessionFlag)


class SwitchboardError(Exception):
    """The server answered ERROR (``code`` is the number, ``name`` e.g. SB_ERR_NAME_TAKEN)."""

    def __init__(self, code: int, message: str, limit: str = "") -> None:
        self.code = code
        self.name = ERROR_NAMES.get(code, "SB_ERR_%d" % code)
        self.limit = limit
        super().__init__("%s: %s%s" % (self.name, message, " (limit %s)" % limit if limit else ""))


class ConnectionClosed(Exception):
    pass


@dataclass
class Welcome:
    id: int
    name: str
    token: str  # after REGISTER, or a password LOGIN (a new device's): keep it. Empty after a token LOGIN
    heartbeat_ms: int
    server: str


@dataclass
class Accepted:
    msg_id: int
    status: str  # delivered, queued, stored, scheduled, duplicate
    seq: int
    recipients: int


@dataclass
class Receipt:
    msg_id: int
    status: int  # 200 delivered, 202 stored, 300 not yet, 210 read, 404, 410, 507
    recipient: int
    recipient_name: str
    seq: int
    at: int
    topic: str


@dataclass
class ReadElsewhere:
    """Another device of this user marked the message at ``seq`` read (READ_ELSEWHERE)."""

    seq: int
    at: int


@dataclass
class HistoryPage:
    """A page of history, newest first; ``more``: older messages remain (ask again with before = the last seq)."""

    messages: List[Message]
    more: bool


Event = Union[Message, Receipt, ReadElsewhere, Frame]


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.frame: Optional[Frame] = None


class Client:
    def __init__(self, host: str = "127.0.0.1", port: int = 7070, timeout: float = 10.0, auto_ack: bool = True,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.events: "queue.Queue[Optional[Event]]" = queue.Queue()
        self.closed = False
        self.close_reason = ""
        self.welcome: Optional[Welcome] = None
        self._reader = FrameReader(max_frame_bytes)
        self._corr = itertools.count(1)
        # msgIds unique across restarts too (as the TypeScript SDK does): receipts name messages by msgId, and
        # receipts for an earlier run's messages may still be waiting for this user
        self._msg_ids = itertools.count(int(time.time() * 1000) * 1024 + random.randrange(1024))
        self._pending: Dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._heartbeat: Optional[threading.Thread] = None
        self._thread = threading.Thread(target=self._read_loop, name="switchboard-reader", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ session

    def register(self, name: str, poll: bool = False) -> Welcome:
        f = self._call("REGISTER", version=PROTOCOL_VERSION, flags=SessionFlag.POLL if poll else 0, name=name)
        return self._welcomed(f)

    def login(self, token: str, user_id: int = 0, name: str = "", poll: bool = False) -> Welcome:
        """Resume a registered user by id (or by name when ``user_id`` is 0) with its token."""
        f = self._call("LOGIN", version=PROTOCOL_VERSION, flags=SessionFlag.POLL if poll else 0, id=user_id,
                       name=name, token=token)
        return self._welcomed(f)

    def login_password(self, name: str, password: str, poll: bool = False, send_only: bool = False) -> Welcome:
        """Log in by name and password as a new device. The Welcome's ``token`` is that device's: keep it and log
        in with ``login(token, name=...)`` next time (each password login makes another device)."""
        flags = SessionFlag.PASSWORD | (SessionFlag.POLL if poll else 0) | (SessionFlag.SEND_ONLY if send_only else 0)
        f = self._call("LOGIN", version=PROTOCOL_VERSION, flags=flags, id=0, name=name, token=password)
        return self._welcomed(f)

    def _welcomed(self, f: Frame) -> Welcome:
        w = Welcome(f["id"], f["name"], f["token"], f["heartbeatMs"], f["server"])
        self.welcome = w
        if w.heartbeat_ms > 0 and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, args=(w.heartbeat_ms / 1000.0,), daemon=True)
            self._heartbeat.start()
        return w

    def _beat(self, every: float) -> None:
        stop = threading.Event()
        while not self.closed and not stop.wait(every):
            try:
                self._write(make("PING", 0))  # answered by PONG corr 0, which the reader drops
            except OSError:
                return

    # ------------------------------------------------------------------ messages

    def send(self, to: Union[Address, str], text: Union[str, bytes], receipt: bool = False, msg_id: int = 0,
             ttl_ms: int = 0, idempotent: bool = False, read_receipt: bool = False) -> Accepted:
        """Send a text. ``to`` is an Address or 'ALL' / '#topic' / '42' / 'name'. Returns ACCEPTED."""
        addr = to if isinstance(to, Address) else Address.parse(to)
        body = text.encode("utf-8") if isinstance(text, str) else text
        flags = (SendFlag.RECEIPT if receipt else 0) | (SendFlag.READ_RECEIPT if read_receipt else 0)
        if idempotent:
            flags |= SendFlag.IDEMPOTENT
        f = self._call("SEND", msgId=msg_id or next(self._msg_ids), to=addr, kind=Kind.TEXT, flags=flags, ttlMs=ttl_ms,
                       notBefore=0, body=body)
        st = f["status"]
        return Accepted(f["msgId"], SEND_STATUS[st] if st < len(SEND_STATUS) else str(st), f["seq"],
                        f["recipients"])

    def ack(self, seq: int) -> None:
        self._write(make("ACK", 0, seq=seq))

    def take(self, max_count: int = 100, peek: bool = False, wait_ms: int = 0) -> List[Message]:
        """Poll (sessions logged in with poll=True): the oldest queued messages, acknowledged unless peek."""
        f = self._call("TAKE", timeout=self.timeout + wait_ms / 1000.0, max=max_count, mode=1 if peek else 0,
                       waitMs=wait_ms)
        msgs: List[Message] = f["msgs"]
        return msgs

    def ping(self) -> None:
        self._call("PING")

    def history(self, with_: Union[Address, str, None] = None, before: int = 0, limit: int = 50) -> HistoryPage:
        """A page of this user's history, newest first: with a user (an Address, or a name / '42'), a topic
        ('#news'), or everything (None or 'ALL'). ``before``: only seqs below it (0 = from the newest)."""
        if with_ is None:
            addr = Address.all()
        else:
            addr = with_ if isinstance(with_, Address) else Address.parse(with_)
        f = self._call("HISTORY", **{"with": addr, "before": before, "limit": limit})
        return HistoryPage(f["msgs"], f["more"] != 0)

    # ------------------------------------------------------------------ requests to SERVER

    def request(self, op: int, arg: str = "") -> Frame:
        return self._call("REQUEST", op=op, arg=arg)

    def who(self) -> List[User]:
        users: List[User] = self.request(Op.WHO)["users"]
        return users

    def whoami(self) -> User:
        users: List[User] = self.request(Op.WHOAMI)["users"]
        return users[0]

    def rename(self, new_name: str) -> str:
        name: str = self.request(Op.RENAME, new_name)["text"]
        if self.welcome is not None:
            self.welcome.name = name
        return name

    def subscribe(self, topic: str) -> None:
        self.request(Op.SUBSCRIBE, topic)

    def unsubscribe(self, topic: str) -> None:
        self.request(Op.UNSUBSCRIBE, topic)

    def devices(self) -> List[Dict[str, Any]]:
        """This user's devices: dicts with id, label, createdAt, lastSeen, online, current (never tokens)."""
        out: List[Dict[str, Any]] = json.loads(self.request(Op.DEVICES)["text"])
        return out

    def revoke(self, device_id: int) -> None:
        """Revoke a device: its token stops working and its sessions end."""
        self.request(Op.REVOKE, str(device_id))

    def set_password(self, password: Optional[str], current: Optional[str] = None) -> None:
        """Set a password (None clears it); changing or clearing one needs the ``current`` one."""
        arg: Dict[str, Any] = {"password": password}
        if current is not None:
            arg["current"] = current
        self.request(Op.PASSWORD, json.dumps(arg))

    def bye(self) -> None:
        """End the session (the user stays registered) and close."""
        if not self.closed:
            try:
                self._write(make("BYE", 0))
                # Let the server read everything (an ACK just before BYE included) and close first: closing a
                # socket with unread input sends a reset, which may discard what the server has not read yet.
                self.sock.shutdown(socket.SHUT_WR)
                self._thread.join(2.0)
            except OSError:
                pass
        self.close()

    # ------------------------------------------------------------------ events

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next unsolicited event: a Message, a Receipt or another Frame; None on timeout or close."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _write(self, frame: Frame) -> None:
        data = encode(frame)
        with self._write_lock:
            self.sock.sendall(data)

    def _call(self, type_: str, timeout: Optional[float] = None, **fields: object) -> Frame:
        if self.closed:
            raise ConnectionClosed(self.close_reason or "closed")
        corr = next(self._corr) & 0xFFFFFFFF or next(self._corr)
        p = _Pending()
        with self._lock:
            self._pending[corr] = p
        try:
            self._write(Frame(type_, corr, dict(fields)))
            if not p.done.wait(self.timeout if timeout is None else timeout):
                raise TimeoutError("no answer to %s in time" % type_)
        finally:
            with self._lock:
                self._pending.pop(corr, None)
        f = p.frame
        if f is None:
            raise ConnectionClosed(self.close_reason or "connection closed")
        if f.type == "ERROR":
            raise SwitchboardError(f["code"], f["message"], f["limit"])
        return f

    def _read_loop(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                for d in self._reader.push(chunk):
                    if isinstance(d, Decoded):
                        self._dispatch(d.frame)
                    elif isinstance(d, Malformed):
                        self.close_reason = "malformed frame from server: " + d.detail
                        return
                    elif isinstance(d, TooLarge):
                        continue  # skipped by the reader; nothing we can do with it
        except OSError:
            pass
        finally:
            self.closed = True
            with self._lock:
                pending = list(self._pending.values())
            for p in pending:
                p.done.set()
            self.events.put(None)

    def _dispatch(self, f: Frame) -> None:
        if f.corr != 0:
            with self._lock:
                p = self._pending.get(f.corr)
            if p is not None:
                p.frame = f
                p.done.set()
                return
        if f.type == "PONG":
            return
        if f.type == "DELIVER":
            m: Message = f["msg"]
            if self.auto_ack and m.seq != 0:
                self.ack(m.seq)  # before queueing, so that a BYE right after reading it cannot overtake the ACK
            self.events.put(m)
            return
        if f.type == "RECEIPT":
            if self.auto_ack and f["ackSeq"] != 0:
                self.ack(f["ackSeq"])
            self.events.put(Receipt(f["msgId"], f["status"], f["recipient"], f["recipientName"], f["seq"], f["at"],
                                    f["topic"]))
            return
        if f.type == "READ_ELSEWHERE":
            self.events.put(ReadElsewhere(f["seq"], f["at"]))
            return
        if f.type == "CLOSING":
            self.close_reason = "%s: %s" % (f["reason"], f["text"])
        self.events.put(f)


def kind_name(kind: int) -> str:
    return KIND_NAMES.get(kind, str(kind))
