#include "switchboard/codec.hpp"

#include <cctype>

namespace switchboard {

namespace {

using F = FieldType;

const std::vector<FrameSpec> kFrames = {
    // client -> server
    {"REGISTER", 0x01, true, {{"version", F::U16}, {"flags", F::U8}, {"name", F::Str}}},
    {"LOGIN", 0x02, true, {{"version", F::U16}, {"flags", F::U8}, {"id", F::U32}, {"name", F::Str}, {"token", F::Str}}},
    {"SEND", 0x03, true,
     {{"msgId", F::U53}, {"to", F::Addr}, {"kind", F::U8}, {"flags", F::U8}, {"ttlMs", F::U32}, {"notBefore", F::U53},
      {"body", F::Bytes}}},
    {"ACK", 0x04, true, {{"seq", F::U53}}},
    {"TAKE", 0x05, true, {{"max", F::U16}, {"mode", F::U8}, {"waitMs", F::U32}}},
    {"READ", 0x06, true, {{"seq", F::U53}}},
    {"PING", 0x07, true, {}},
    {"REQUEST", 0x08, true, {{"op", F::U8}, {"arg", F::Str}}},
    {"CONV", 0x09, true, {{"action", F::U8}, {"convId", F::Str}, {"to", F::Addr}, {"body", F::Bytes}}},
    {"FILE_BEGIN", 0x0a, true,
     {{"msgId", F::U53}, {"to", F::Addr}, {"flags", F::U8}, {"size", F::U53}, {"sha256", F::Str}, {"name", F::Str},
      {"text", F::Str}}},
    {"FILE_CHUNK", 0x0b, true, {{"uploadId", F::Str}, {"data", F::Bytes}}},
    {"FILE_END", 0x0c, true, {{"uploadId", F::Str}}},
    {"FILE_ABORT", 0x0d, true, {{"uploadId", F::Str}}},
    {"DOWNLOAD", 0x0e, true, {{"fileId", F::Str}, {"offset", F::U53}, {"length", F::U53}}},
    {"BYE", 0x0f, true, {}},
    {"HISTORY", 0x10, true, {{"with", F::Addr}, {"before", F::U53}, {"limit", F::U16}}},
    // server -> client
    {"ERROR", 0x40, false, {{"code", F::U16}, {"limit", F::Str}, {"message", F::Str}}},
    {"WELCOME", 0x41, false,
     {{"version", F::U16}, {"id", F::U32}, {"name", F::Str}, {"token", F::Str}, {"heartbeatMs", F::U32},
      {"server", F::Str}}},
    {"DELIVER", 0x42, false, {{"msg", F::Msg}}},
    {"ACCEPTED", 0x43, false,
     {{"msgId", F::U53}, {"status", F::U8}, {"seq", F::U53}, {"recipients", F::U32}, {"fileId", F::Str}}},
    {"RECEIPT", 0x44, false,
     {{"msgId", F::U53}, {"status", F::U16}, {"recipient", F::U32}, {"recipientName", F::Str}, {"seq", F::U53},
      {"at", F::U53}, {"topic", F::Str}, {"ackSeq", F::U53}}},
    {"BATCH", 0x45, false, {{"msgs", F::Msgs}}},
    {"NOTICE", 0x46, false, {{"code", F::Str}, {"text", F::Str}}},
    {"PONG", 0x47, false, {}},
    {"RESULT", 0x48, false, {{"op", F::U8}, {"text", F::Str}, {"users", F::Users}, {"items", F::Items}}},
    {"PRESENCE", 0x49, false,
     {{"id", F::U32}, {"name", F::Str}, {"online", F::U8}, {"protocol", F::Str}, {"at", F::U53}}},
    {"CONV_EVENT", 0x4a, false,
     {{"event", F::U8}, {"convId", F::Str}, {"peerId", F::U32}, {"peerName", F::Str}, {"expiresAt", F::U53},
      {"reason", F::Str}, {"body", F::Bytes}}},
    {"RENAMED", 0x4b, false, {{"id", F::U32}, {"oldName", F::Str}, {"newName", F::Str}}},
    {"FILE_INFO", 0x4c, false, {{"fileId", F::Str}, {"name", F::Str}, {"size", F::U53}, {"sha256", F::Str}}},
    {"FILE_DATA", 0x4d, false, {{"offset", F::U53}, {"last", F::U8}, {"data", F::Bytes}}},
    {"READ_ELSEWHERE", 0x4e, false, {{"seq", F::U53}, {"at", F::U53}}},
    {"CLOSING", 0x4f, false, {{"reason", F::Str}, {"text", F::Str}}},
    {"HISTORY_PAGE", 0x50, false, {{"more", F::U8}, {"msgs", F::Msgs}}},
};

struct Bad {
  std::string what;
};

class Reader {
 public:
  Reader(const uint8_t* b, size_t start, size_t end) : b_(b), off_(start), end_(end) {}
  size_t off() const { return off_; }
  void need(size_t n) {
    if (off_ + n > end_) throw Bad{"field runs past the end of the frame at byte " + std::to_string(off_)};
  }
  uint64_t be(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | b_[off_ + i];
    off_ += n;
    return v;
  }
  uint64_t u53() {
    uint64_t v = be(8);
    if (v > kMaxU53) throw Bad{"integer larger than 2^53-1"};
    return v;
  }
  std::string str() {
    size_t n = size_t(be(2));
    need(n);
    if (!validUtf8(b_ + off_, n)) throw Bad{"string is not valid UTF-8"};
    std::string s(reinterpret_cast<const char*>(b_ + off_), n);
    off_ += n;
    return s;
  }
  Bytes bytes() {
    uint64_t n = be(4);
    need(size_t(n));
    Bytes v(b_ + off_, b_ + off_ + n);
    off_ += size_t(n);
    return v;
  }
  Address addr() {
    auto k = uint8_t(be(1));
    switch (k) {
      case Address::User: return Address::user(uint32_t(be(4)));
      case Address::Name: return Address::named(str());
      case Address::All: return Address::all();
      case Address::Server: return Address::server();
      case Address::Topic: return Address::topic(str());
      default: throw Bad{"unknown address kind " + std::to_string(k)};
    }
  }
  Message msg() {
    Message m;
    m.seq = u53();
    m.msgId = u53();
    m.from = uint32_t(be(4));
    m.fromName = str();
    m.to = uint32_t(be(4));
    m.topic = str();
    m.kind = uint8_t(be(1));
    m.flags = uint8_t(be(1));
    m.ts = u53();
    m.expiresAt = u53();
    m.fileId = str();
    m.body = bytes();
    return m;
  }
  template <class T, class Fn>
  std::vector<T> list(Fn item) {
    size_t n = size_t(be(2));
    std::vector<T> out;
    for (size_t i = 0; i < n; i++) out.push_back(item());
    return out;
  }
  Value field(FieldType t) {
    switch (t) {
      case F::U8: return be(1);
      case F::U16: return be(2);
      case F::U32: return be(4);
      case F::U53: return u53();
      case F::Str: return str();
      case F::Bytes: return bytes();
      case F::Addr: return addr();
      case F::Msg: return msg();
      case F::Msgs: return list<Message>([this] { return msg(); });
      case F::Users:
        return list<User>([this] {
          User u;
          u.id = uint32_t(be(4));
          u.name = str();
          u.protocol = str();
          u.since = u53();
          u.lastSeen = u53();
          return u;
        });
      case F::Items:
        return list<Item>([this] {
          Item i;
          i.name = str();
          i.count = uint32_t(be(4));
          return i;
        });
    }
    throw Bad{"unknown field type"};
  }

 private:
  const uint8_t* b_;
  size_t off_, end_;
};

class Writer {
 public:
  Bytes out;
  void be(uint64_t v, size_t n, uint64_t top, const char* what) {
    if (v > top) throw std::invalid_argument(std::string("value does not fit ") + what);
    for (size_t i = n; i-- > 0;) out.push_back(uint8_t(v >> (8 * i)));
  }
  void u8(uint64_t v) { be(v, 1, 0xff, "u8"); }
  void u16(uint64_t v) { be(v, 2, 0xffff, "u16"); }
  void u32(uint64_t v) { be(v, 4, 0xffffffffu, "u32"); }
  void u53(uint64_t v) { be(v, 8, kMaxU53, "u53"); }
  void str(const std::string& s) {
    u16(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void bytes(const Bytes& b) {
    u32(b.size());
    out.insert(out.end(), b.begin(), b.end());
  }
  void addr(const Address& a) {
    u8(a.kind);
    if (a.kind == Address::User) u32(a.id);
    if (a.kind == Address::Name || a.kind == Address::Topic) str(a.name);
    if (a.kind > Address::Topic) throw std::invalid_argument("unknown address kind");
  }
  void msg(const Message& m) {
    u53(m.seq);
    u53(m.msgId);
    u32(m.from);
    str(m.fromName);
    u32(m.to);
    str(m.topic);
    u8(m.kind);
    u8(m.flags);
    u53(m.ts);
    u53(m.expiresAt);
    str(m.fileId);
    bytes(m.body);
  }
  void field(FieldType t, const Value& v) {
    switch (t) {
      case F::U8: return u8(std::get<uint64_t>(v));
      case F::U16: return u16(std::get<uint64_t>(v));
      case F::U32: return u32(std::get<uint64_t>(v));
      case F::U53: return u53(std::get<uint64_t>(v));
      case F::Str: return str(std::get<std::string>(v));
      case F::Bytes: return bytes(std::get<Bytes>(v));
      case F::Addr: return addr(std::get<Address>(v));
      case F::Msg: return msg(std::get<Message>(v));
      case F::Msgs: {
        auto& l = std::get<std::vector<Message>>(v);
        u16(l.size());
        for (auto& m : l) msg(m);
        return;
      }
      case F::Users: {
        auto& l = std::get<std::vector<User>>(v);
        u16(l.size());
        for (auto& u : l) {
          u32(u.id);
          str(u.name);
          str(u.protocol);
          u53(u.since);
          u53(u.lastSeen);
        }
        return;
      }
      case F::Items: {
        auto& l = std::get<std::vector<Item>>(v);
        u16(l.size());
        for (auto& i : l) {
          str(i.name);
          u32(i.count);
        }
        return;
      }
    }
  }
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

}  // namespace

Address Address::parse(const std::string& text) {
  if (text == "ALL") return all();
  if (text == "SERVER") return server();
  if (text.size() > 1 && text[0] == '#') return topic(text.substr(1));
  bool digits = !text.empty() && text.size() <= 10;
  for (char c : text) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits && std::stoull(text) <= 0xffffffffull) return user(uint32_t(std::stoull(text)));
  return named(text);
}

const std::vector<FrameSpec>& frameTable() { return kFrames; }

const FrameSpec* specByName(const std::string& name) {
  for (auto& s : kFrames)
    if (name == s.name) return &s;
  return nullptr;
}

const FrameSpec* specByCode(uint8_t code) {
  for (auto& s : kFrames)
    if (code == s.code) return &s;
  return nullptr;
}

bool validUtf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

DecodeResult decode(const uint8_t* buf, size_t len, uint64_t maxFrameBytes) {
  DecodeResult r;
  if (len < 4) return r;  // NeedMore
  uint64_t length = be32(buf);
  uint64_t size = length + 4;
  if (length < kHeaderBytes - 4) {
    r.status = DecodeResult::Malformed;
    r.detail = "frame length " + std::to_string(length) + " is shorter than its header";
    return r;
  }
  if (size > maxFrameBytes) {
    r.status = DecodeResult::TooLarge;
    r.size = size;
    r.type = len >= 5 ? buf[4] : 0;
    r.corr = len >= kHeaderBytes ? be32(buf + 5) : 0;
    return r;
  }
  if (len < size) return r;  // NeedMore
  uint8_t code = buf[4];
  r.corr = be32(buf + 5);
  const FrameSpec* spec = specByCode(code);
  if (spec == nullptr) {
    r.status = DecodeResult::Malformed;
    char hex[8];
    snprintf(hex, sizeof hex, "%x", code);
    r.detail = std::string("unknown frame type 0x") + hex;
    return r;
  }
  Reader rd(buf, kHeaderBytes, size_t(size));
  Frame f(spec->name, r.corr);
  try {
    for (auto& fs : spec->fields) f.fields[fs.name] = rd.field(fs.type);
  } catch (const Bad& e) {
    r.status = DecodeResult::Malformed;
    r.detail = std::string(spec->name) + ": " + e.what;
    return r;
  }
  if (rd.off() != size) {
    r.status = DecodeResult::Malformed;
    r.detail = std::string(spec->name) + ": " + std::to_string(size - rd.off()) + " bytes left over after the last field";
    return r;
  }
  r.status = DecodeResult::Ok;
  r.frame = std::move(f);
  r.size = size;
  return r;
}

Bytes encode(const Frame& frame) {
  const FrameSpec* spec = specByName(frame.type);
  if (spec == nullptr) throw std::invalid_argument("unknown frame " + frame.type);
  Writer w;
  w.out.resize(4);
  w.u8(spec->code);
  w.u32(frame.corr);
  for (auto& fs : spec->fields) {
    auto it = frame.fields.find(fs.name);
    if (it == frame.fields.end()) throw std::invalid_argument(frame.type + ": missing field " + fs.name);
    try {
      w.field(fs.type, it->second);
    } catch (const std::bad_variant_access&) {
      throw std::invalid_argument(frame.type + ": field " + fs.name + " has the wrong type");
    }
  }
  uint64_t length = w.out.size() - 4;
  if (length > 0xffffffffu) throw std::invalid_argument("frame longer than 2^32-1 bytes");
  for (int i = 0; i < 4; i++) w.out[size_t(i)] = uint8_t(length >> (8 * (3 - i)));
  return w.out;
}

std::vector<DecodeResult> FrameReader::push(const uint8_t* data, size_t len) {
  buf_.insert(buf_.end(), data, data + len);
  std::vector<DecodeResult> out;
  size_t at = 0;
  for (;;) {
    if (skipping_ > 0) {
      uint64_t n = std::min<uint64_t>(skipping_, buf_.size() - at);
      skipping_ -= n;
      at += size_t(n);
      if (skipping_ > 0) break;
    }
    DecodeResult d = decode(buf_.data() + at, buf_.size() - at, max_);
    if (d.status == DecodeResult::NeedMore) break;
    if (d.status == DecodeResult::Ok) {
      at += size_t(d.size);
      out.push_back(std::move(d));
      continue;
    }
    if (d.status == DecodeResult::Malformed) {
      at = buf_.size();
      out.push_back(std::move(d));
      break;
    }
    skipping_ = d.size;  // TooLarge: drop the frame's bytes as they come, the stream goes on
    out.push_back(std::move(d));
  }
  buf_.erase(buf_.begin(), buf_.begin() + long(at));
  return out;
}

std::string errorName(uint16_t code) {
  static const char* names[] = {"SB_ERR_MALFORMED",        "SB_ERR_TOO_LARGE",          "SB_ERR_NAME_INVALID",
                                "SB_ERR_NAME_TAKEN",       "SB_ERR_AUTH",               "SB_ERR_NOT_LOGGED_IN",
                                "SB_ERR_UNKNOWN_RECIPIENT", "SB_ERR_UNKNOWN_MESSAGE",   "SB_ERR_QUEUE_FULL",
                                "SB_ERR_RATE_LIMITED",     "SB_ERR_LIMIT",              "SB_ERR_UNSUPPORTED",
                                "SB_ERR_FORBIDDEN",        "SB_ERR_CONFLICT",           "SB_ERR_UNKNOWN_FILE",
                                "SB_ERR_FILE_CHECK",       "SB_ERR_UNKNOWN_CONVERSATION", "SB_ERR_SHUTTING_DOWN",
                                "SB_ERR_INTERNAL",         "SB_ERR_STORAGE_FULL",       "SB_ERR_PASSWORD_INVALID",
                                "SB_ERR_UNKNOWN_DEVICE",   "SB_ERR_OFFLINE"};
  if (code >= 1 && code <= 23) return names[code - 1];
  return "SB_ERR_" + std::to_string(code);
}

const char* sendStatusName(uint64_t s) {
  static const char* names[] = {"delivered", "queued", "stored", "scheduled", "duplicate"};
  return s < 5 ? names[s] : "unknown";
}

const char* receiptStatusName(uint64_t s) {
  switch (s) {
    case 200: return "delivered";
    case 210: return "read";
    case 202: return "stored";
    case 300: return "not yet acknowledged";
    case 404: return "recipient deleted";
    case 410: return "expired";
    case 507: return "dropped (queue full)";
    default: return "";
  }
}

}  // namespace switchboard
