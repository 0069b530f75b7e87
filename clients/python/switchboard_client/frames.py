"""The native protocol's frame table, ported from src/protocols/native/frames.ts.

    frame := u32 length | u8 type | u32 corr | fields...   (length counts everything after itself)

Every integer is big-endian. One table drives both the encoder and the decoder, exactly as in the
TypeScript server, so a new frame is one new line here.
"""
from typing import Dict, Tuple

HEADER_BYTES = 9  # u32 length + u8 type + u32 corr
PROTOCOL_VERSION = 1
MAX_U53 = 2 ** 53 - 1
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024


class Kind:
    """Message kinds: the ``kind`` byte of a msg and of SEND. The codes are declared once in the server's
    src/schema/message.ts; tests/test_codec.py checks these against test/vectors/native/schema.json."""

    TEXT = 0
    FILE = 1
    RECEIPT = 2
    NOTICE = 3
    CONTROL = 4


#: Kind names by code.
KIND_NAMES: Dict[int, str] = {v: k.lower() for k, v in vars(Kind).items() if k.isupper()}

#: Reserved user ids (SERVER and ALL).
SERVER_ID = 0
ALL_ID = 0xFFFFFFFF


class AddrKind:
    USER = 0
    NAME = 1
    ALL = 2
    SERVER = 3
    TOPIC = 4


class Op:
    """REQUEST / RESULT operations."""

    WHOAMI = 1
    WHO = 2
    RENAME = 3
    END = 4
    DELETE_ACCOUNT = 5
    STATS = 6
    SUBSCRIBE = 7
    UNSUBSCRIBE = 8
    TOPICS = 9
    SUBSCRIPTIONS = 10
    BLOCK = 11
    UNBLOCK = 12
    BLOCKED = 13
    PRESENCE = 14
    LAST_SEEN = 15
    DEVICES = 16  # RESULT text = the user's devices as a JSON list
    REVOKE = 17  # arg = a device id
    PASSWORD = 18  # arg = JSON {"password": ..., "current"?: ...}
    CONVERSATION = 20
    UPLOAD = 21


class SessionFlag:
    POLL = 1
    PASSWORD = 2  # LOGIN: id 0, name = the user, token = the password; WELCOME brings a new device's token
    SEND_ONLY = 4  # attach beside the device's live session, for a one-shot command; nothing is delivered


class SendFlag:
    RECEIPT = 1
    READ_RECEIPT = 2
    IDEMPOTENT = 4
    TRANSIENT = 16


class MsgFlag:
    """Bits of a msg's ``flags`` byte beyond the sender's SEND flags (set by the server)."""

    SENT = 8  # a copy of what this user sent from another device; ``to`` is its recipient


#: ACCEPTED status codes (index = code).
SEND_STATUS = ("delivered", "queued", "stored", "scheduled", "duplicate")

#: RECEIPT status codes.
RECEIPT_STATUS = {
    200: "delivered",
    210: "read",
    202: "stored",
    300: "not yet acknowledged",
    404: "recipient deleted",
    410: "expired",
    507: "dropped (queue full)",
}

#: ERROR codes (src/core/errors.ts ErrorNumbers).
ERROR_NAMES = {
    1: "SB_ERR_MALFORMED",
    2: "SB_ERR_TOO_LARGE",
    3: "SB_ERR_NAME_INVALID",
    4: "SB_ERR_NAME_TAKEN",
    5: "SB_ERR_AUTH",
    6: "SB_ERR_NOT_LOGGED_IN",
    7: "SB_ERR_UNKNOWN_RECIPIENT",
    8: "SB_ERR_UNKNOWN_MESSAGE",
    9: "SB_ERR_QUEUE_FULL",
    10: "SB_ERR_RATE_LIMITED",
    11: "SB_ERR_LIMIT",
    12: "SB_ERR_UNSUPPORTED",
    13: "SB_ERR_FORBIDDEN",
    14: "SB_ERR_CONFLICT",
    15: "SB_ERR_UNKNOWN_FILE",
    16: "SB_ERR_FILE_CHECK",
    17: "SB_ERR_UNKNOWN_CONVERSATION",
    18: "SB_ERR_SHUTTING_DOWN",
    19: "SB_ERR_INTERNAL",
    20: "SB_ERR_STORAGE_FULL",
    21: "SB_ERR_PASSWORD_INVALID",
    22: "SB_ERR_UNKNOWN_DEVICE",
    23: "SB_ERR_OFFLINE",
}

Field = Tuple[str, str]

#: name -> (code, direction, fields); field types: u8 u16 u32 u53 str bytes addr msg msgs users items
FRAMES: Dict[str, Tuple[int, str, Tuple[Field, ...]]] = {
    # client -> server
    "REGISTER": (0x01, "c2s", (("version", "u16"), ("flags", "u8"), ("name", "str"))),
    "LOGIN": (0x02, "c2s", (("version", "u16"), ("flags", "u8"), ("id", "u32"), ("name", "str"), ("token", "str"))),
    "SEND": (0x03, "c2s", (("msgId", "u53"), ("to", "addr"), ("kind", "u8"), ("flags", "u8"), ("ttlMs", "u32"),
                           ("notBefore", "u53"), ("body", "bytes"))),
    "ACK": (0x04, "c2s", (("seq", "u53"),)),
    "TAKE": (0x05, "c2s", (("max", "u16"), ("mode", "u8"), ("waitMs", "u32"))),
    "READ": (0x06, "c2s", (("seq", "u53"),)),
    "PING": (0x07, "c2s", ()),
    "REQUEST": (0x08, "c2s", (("op", "u8"), ("arg", "str"))),
    "CONV": (0x09, "c2s", (("action", "u8"), ("convId", "str"), ("to", "addr"), ("body", "bytes"))),
    "FILE_BEGIN": (0x0A, "c2s", (("msgId", "u53"), ("to", "addr"), ("flags", "u8"), ("size", "u53"), ("sha256", "str"),
                                 ("name", "str"), ("text", "str"))),
    "FILE_CHUNK": (0x0B, "c2s", (("uploadId", "str"), ("data", "bytes"))),
    "FILE_END": (0x0C, "c2s", (("uploadId", "str"),)),
    "FILE_ABORT": (0x0D, "c2s", (("uploadId", "str"),)),
    "DOWNLOAD": (0x0E, "c2s", (("fileId", "str"), ("offset", "u53"), ("length", "u53"))),
    "BYE": (0x0F, "c2s", ()),
    "HISTORY": (0x10, "c2s", (("with", "addr"), ("before", "u53"), ("limit", "u16"))),
    # server -> client
    "ERROR": (0x40, "s2c", (("code", "u16"), ("limit", "str"), ("message", "str"))),
    "WELCOME": (0x41, "s2c", (("version", "u16"), ("id", "u32"), ("name", "str"), ("token", "str"),
                              ("heartbeatMs", "u32"), ("server", "str"))),
    "DELIVER": (0x42, "s2c", (("msg", "msg"),)),
    "ACCEPTED": (0x43, "s2c", (("msgId", "u53"), ("status", "u8"), ("seq", "u53"), ("recipients", "u32"),
                               ("fileId", "str"))),
    "RECEIPT": (0x44, "s2c", (("msgId", "u53"), ("status", "u16"), ("recipient", "u32"), ("recipientName", "str"),
                              ("seq", "u53"), ("at", "u53"), ("topic", "str"), ("ackSeq", "u53"))),
    "BATCH": (0x45, "s2c", (("msgs", "msgs"),)),
    "NOTICE": (0x46, "s2c", (("code", "str"), ("text", "str"))),
    "PONG": (0x47, "s2c", ()),
    "RESULT": (0x48, "s2c", (("op", "u8"), ("text", "str"), ("users", "users"), ("items", "items"))),
    "PRESENCE": (0x49, "s2c", (("id", "u32"), ("name", "str"), ("online", "u8"), ("protocol", "str"), ("at", "u53"))),
    "CONV_EVENT": (0x4A, "s2c", (("event", "u8"), ("convId", "str"), ("peerId", "u32"), ("peerName", "str"),
                                 ("expiresAt", "u53"), ("reason", "str"), ("body", "bytes"))),
    "RENAMED": (0x4B, "s2c", (("id", "u32"), ("oldName", "str"), ("newName", "str"))),
    "FILE_INFO": (0x4C, "s2c", (("fileId", "str"), ("name", "str"), ("size", "u53"), ("sha256", "str"))),
    "FILE_DATA": (0x4D, "s2c", (("offset", "u53"), ("last", "u8"), ("data", "bytes"))),
    "READ_ELSEWHERE": (0x4E, "s2c", (("seq", "u53"), ("at", "u53"))),
    "CLOSING": (0x4F, "s2c", (("reason", "str"), ("text", "str"))),
    "HISTORY_PAGE": (0x50, "s2c", (("more", "u8"), ("msgs", "msgs"))),
}

FRAME_BY_CODE: Dict[int, str] = {spec[0]: name for name, spec in FRAMES.items()}
