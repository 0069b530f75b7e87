// Switchboard native protocol: the frame table and a pure codec (no I/O, no clock).
//
//   frame := u32 length | u8 type | u32 corr | fields...   (length counts everything after itself)
//
// Every integer is big-endian. The table mirrors src/protocols/native/frames.ts; one table drives both
// the encoder and the decoder. decode() never throws on untrusted bytes.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace switchboard {

constexpr uint32_t kHeaderBytes = 9;
constexpr uint16_t kProtocolVersion = 1;
constexpr uint64_t kMaxU53 = (uint64_t(1) << 53) - 1;
constexpr uint64_t kDefaultMaxFrameBytes = 1024 * 1024;
constexpr uint32_t kServerId = 0;
constexpr uint32_t kAllId = 0xffffffffu;

using Bytes = std::vector<uint8_t>;

/// Message kinds: the `kind` byte of a msg and of SEND. The codes are declared once, in the server's
/// src/schema/message.ts; tests/test_vectors.cpp checks these against test/vectors/native/schema.json.
struct Kind {
  static constexpr uint8_t Text = 0, File = 1, Receipt = 2, Notice = 3, Control = 4;
};

/// Every kind by its schema name.
inline const std::map<std::string, uint8_t>& kindCodes() {
  static const std::map<std::string, uint8_t> codes{{"text", Kind::Text},
                                                    {"file", Kind::File},
                                                    {"receipt", Kind::Receipt},
                                                    {"notice", Kind::Notice},
                                                    {"control", Kind::Control}};
  return codes;
}

/// LOGIN / REGISTER flags.
struct SessionFlag {
  static constexpr uint8_t Poll = 1;
  /// LOGIN: id 0, name = the user, token = the password; WELCOME brings a new device's token.
  static constexpr uint8_t Password = 2;
  /// Attach beside the device's live session, for a one-shot command; nothing is delivered to it.
  static constexpr uint8_t SendOnly = 4;
};

/// Bits of a msg's flags byte beyond the sender's SEND flags (set by the server).
struct MsgFlag {
  /// A copy of what this user sent from another device; `to` is its recipient.
  static constexpr uint8_t Sent = 8;
};

enum class FieldType { U8, U16, U32, U53, Str, Bytes, Addr, Msg, Msgs, Users, Items };

struct Address {
  enum Kind : uint8_t { User = 0, Name = 1, All = 2, Server = 3, Topic = 4 };
  Kind kind = All;
  uint32_t id = 0;   // User
  std::string name;  // Name, Topic

  static Address user(uint32_t id) { return {User, id, {}}; }
  static Address named(std::string n) { return {Name, 0, std::move(n)}; }
  static Address all() { return {All, 0, {}}; }
  static Address server() { return {Server, 0, {}}; }
  static Address topic(std::string t) { return {Topic, 0, std::move(t)}; }
  /// "ALL", "SERVER", "#topic", "42" (a user id) or a user name.
  static Address parse(const std::string& text);
  bool operator==(const Address& o) const { return kind == o.kind && id == o.id && name == o.name; }
};

struct Message {
  uint64_t seq = 0, msgId = 0;
  uint32_t from = 0;
  std::string fromName;
  uint32_t to = 0;
  std::string topic;
  uint8_t kind = 0, flags = 0;
  uint64_t ts = 0, expiresAt = 0;
  std::string fileId;
  Bytes body;
  std::string text() const { return std::string(body.begin(), body.end()); }
  bool operator==(const Message& o) const {
    return seq == o.seq && msgId == o.msgId && from == o.from && fromName == o.fromName && to == o.to &&
           topic == o.topic && kind == o.kind && flags == o.flags && ts == o.ts && expiresAt == o.expiresAt &&
           fileId == o.fileId && body == o.body;
  }
};

struct User {
  uint32_t id = 0;
  std::string name, protocol;
  uint64_t since = 0, lastSeen = 0;
  bool operator==(const User& o) const {
    return id == o.id && name == o.name && protocol == o.protocol && since == o.since && lastSeen == o.lastSeen;
  }
};

struct Item {
  std::string name;
  uint32_t count = 0;
  bool operator==(const Item& o) const { return name == o.name && count == o.count; }
};

/// A field's value; integers of every width are held as uint64_t.
using Value = std::variant<uint64_t, std::string, Bytes, Address, Message, std::vector<Message>, std::vector<User>,
                           std::vector<Item>>;

struct FieldSpec {
  const char* name;
  FieldType type;
};

struct FrameSpec {
  const char* name;
  uint8_t code;
  bool c2s;
  std::vector<FieldSpec> fields;
};

/// The whole table, in code order.
const std::vector<FrameSpec>& frameTable();
const FrameSpec* specByName(const std::string& name);
const FrameSpec* specByCode(uint8_t code);

struct Frame {
  std::string type;  // "SEND", "DELIVER", ...
  uint32_t corr = 0;
  std::map<std::string, Value> fields;

  Frame() = default;
  Frame(std::string t, uint32_t c) : type(std::move(t)), corr(c) {}
  Frame& set(const std::string& k, Value v) {
    fields[k] = std::move(v);
    return *this;
  }
  uint64_t num(const std::string& k) const { return std::get<uint64_t>(fields.at(k)); }
  const std::string& str(const std::string& k) const { return std::get<std::string>(fields.at(k)); }
  template <class T>
  const T& get(const std::string& k) const {
    return std::get<T>(fields.at(k));
  }
  bool operator==(const Frame& o) const { return type == o.type && corr == o.corr && fields == o.fields; }
};

struct DecodeResult {
  enum Status { Ok, NeedMore, TooLarge, Malformed } status = NeedMore;
  Frame frame;         // Ok
  uint64_t size = 0;   // Ok: bytes consumed; TooLarge: bytes to skip (the whole frame)
  uint32_t corr = 0;   // TooLarge, Malformed: the corr when the header was readable
  uint8_t type = 0;    // TooLarge
  std::string detail;  // Malformed
};

/// Decode the first frame of buf[0..len). maxFrameBytes bounds the whole frame, length prefix included.
DecodeResult decode(const uint8_t* buf, size_t len, uint64_t maxFrameBytes = kDefaultMaxFrameBytes);

/// Encode one frame. Throws std::invalid_argument for a missing field or a value that does not fit.
Bytes encode(const Frame& frame);

/// Streaming decoder for one connection: handles split and coalesced frames, skips too-large ones.
class FrameReader {
 public:
  explicit FrameReader(uint64_t maxFrameBytes = kDefaultMaxFrameBytes) : max_(maxFrameBytes) {}
  /// Append bytes; returns the frames decoded so far, then at most one error (TooLarge or Malformed).
  std::vector<DecodeResult> push(const uint8_t* data, size_t len);

 private:
  uint64_t max_;
  Bytes buf_;
  uint64_t skipping_ = 0;
};

/// True when the bytes are well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool validUtf8(const uint8_t* p, size_t n);

std::string errorName(uint16_t code);
const char* sendStatusName(uint64_t status);
const char* receiptStatusName(uint64_t status);

}  // namespace switchboard
