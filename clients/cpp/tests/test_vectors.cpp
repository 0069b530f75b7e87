// The codec against every golden vector in test/vectors/native (conventions: test/vectors/README.md):
// parse, generate, mirror, every split and byte by byte, and the invalid inputs.
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "switchboard/json.hpp"
#include "switchboard/codec.hpp"

using namespace switchboard;

static int failures = 0;
#define CHECK(cond, what)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      failures++;                                                  \
      std::cerr << "FAIL " << what << " (" #cond ")" << std::endl; \
    }                                                              \
  } while (0)

static Bytes fromHex(const std::string& h) {
  Bytes b;
  for (size_t i = 0; i + 1 < h.size(); i += 2) b.push_back(uint8_t(std::stoul(h.substr(i, 2), nullptr, 16)));
  return b;
}

static std::string toHex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) s += d[c >> 4], s += d[c & 15];
  return s;
}

static Message msgFrom(const json::Value& v) {
  Message m;
  m.seq = v["seq"].n;
  m.msgId = v["msgId"].n;
  m.from = uint32_t(v["from"].n);
  m.fromName = v["fromName"].s;
  m.to = uint32_t(v["to"].n);
  m.topic = v["topic"].s;
  m.kind = uint8_t(v["kind"].n);
  m.flags = uint8_t(v["flags"].n);
  m.ts = v["ts"].n;
  m.expiresAt = v["expiresAt"].n;
  m.fileId = v["fileId"].s;
  m.body = fromHex(v["body"]["$hex"].s);
  return m;
}

static Value fieldFrom(FieldType t, const json::Value& v) {
  switch (t) {
    case FieldType::U8:
    case FieldType::U16:
    case FieldType::U32:
    case FieldType::U53: return v.n;
    case FieldType::Str: return v.s;
    case FieldType::Bytes: return fromHex(v["$hex"].s);
    case FieldType::Addr: {
      const std::string& k = v["kind"].s;
      if (k == "user") return Address::user(uint32_t(v["id"].n));
      if (k == "name") return Address::named(v["name"].s);
      if (k == "topic") return Address::topic(v["topic"].s);
      if (k == "all") return Address::all();
      return Address::server();
    }
    case FieldType::Msg: return msgFrom(v);
    case FieldType::Msgs: {
      std::vector<Message> l;
      for (auto& m : v.a) l.push_back(msgFrom(m));
      return l;
    }
    case FieldType::Users: {
      std::vector<User> l;
      for (auto& u : v.a) l.push_back({uint32_t(u["id"].n), u["name"].s, u["protocol"].s, u["since"].n, u["lastSeen"].n});
      return l;
    }
    case FieldType::Items: {
      std::vector<Item> l;
      for (auto& i : v.a) l.push_back({i["name"].s, uint32_t(i["count"].n)});
      return l;
    }
  }
  return uint64_t(0);
}

static Frame frameFrom(const json::Value& j) {
  const FrameSpec* spec = specByName(j["type"].s);
  if (spec == nullptr) throw std::runtime_error("unknown frame type in vector: " + j["type"].s);
  Frame f(spec->name, uint32_t(j["corr"].n));
  for (auto& fs : spec->fields) f.fields[fs.name] = fieldFrom(fs.type, j[fs.name]);
  if (j.o.size() != spec->fields.size() + 2) throw std::runtime_error("vector has fields the table does not know");
  return f;
}

static json::Value load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : SB_VECTORS_DIR;
  json::Value frames = load(dir + "/frames.json"), invalid = load(dir + "/invalid.json");
  // The kind codes come from the server's message schema, through schema.json.
  json::Value kinds = load(dir + "/schema.json")["kinds"];
  CHECK(kinds.o.size() == kindCodes().size(), "as many kinds as schema.json (" << kinds.o.size() << ")");
  for (auto& [name, code] : kinds.o) {
    auto it = kindCodes().find(name);
    CHECK(it != kindCodes().end() && it->second == code.n, "kind " << name << " has code " << code.n);
  }
  std::set<std::string> seen;
  Bytes all;
  std::vector<Frame> allFrames;
  for (auto& v : frames.a) {
    const std::string name = v["name"].s;
    Frame want = frameFrom(v["frame"]);
    seen.insert(want.type);
    Bytes raw = fromHex(v["hex"].s);
    all.insert(all.end(), raw.begin(), raw.end());
    allFrames.push_back(want);
    DecodeResult d = decode(raw.data(), raw.size());
    CHECK(d.status == DecodeResult::Ok, "parse " << name << ": " << d.detail);
    CHECK(d.size == raw.size(), "parse size " << name);
    CHECK(d.frame == want, "parse " << name);
    std::string got = toHex(encode(want));
    CHECK(got == v["hex"].s, "generate " << name << ": " << got);
    Bytes again = encode(want);
    DecodeResult m = decode(again.data(), again.size());
    CHECK(m.status == DecodeResult::Ok && m.frame == want, "mirror " << name);
    for (size_t cut = 0; cut <= raw.size(); cut++) {
      FrameReader r;
      auto a = r.push(raw.data(), cut);
      auto b = r.push(raw.data() + cut, raw.size() - cut);
      a.insert(a.end(), b.begin(), b.end());
      CHECK(a.size() == 1 && a[0].status == DecodeResult::Ok && a[0].frame == want, "split at " << cut << " " << name);
    }
    FrameReader r;
    std::vector<DecodeResult> got1;
    for (size_t i = 0; i < raw.size(); i++)
      for (auto& x : r.push(raw.data() + i, 1)) got1.push_back(x);
    CHECK(got1.size() == 1 && got1[0].frame == want, "byte at a time " << name);
  }
  CHECK(seen.size() == frameTable().size(), "vectors cover every frame type (" << seen.size() << ")");
  FrameReader r;
  auto coalesced = r.push(all.data(), all.size());
  CHECK(coalesced.size() == allFrames.size(), "coalesced count");
  for (size_t i = 0; i < coalesced.size() && i < allFrames.size(); i++) CHECK(coalesced[i].frame == allFrames[i], "coalesced " << i);

  for (auto& v : invalid.a) {
    const std::string name = v["name"].s, outcome = v["outcome"].s;
    Bytes raw = fromHex(v["hex"].s);
    uint64_t max = v.has("maxFrameBytes") ? v["maxFrameBytes"].n : kDefaultMaxFrameBytes;
    DecodeResult d = decode(raw.data(), raw.size(), max);
    if (outcome == "need-more") CHECK(d.status == DecodeResult::NeedMore, "invalid " << name);
    else if (outcome == "malformed") {
      CHECK(d.status == DecodeResult::Malformed, "invalid " << name);
      CHECK(d.corr == v["corr"].n, "invalid corr " << name);
    } else {
      CHECK(d.status == DecodeResult::TooLarge, "invalid " << name);
      CHECK(d.size == v["size"].n, "invalid size " << name);
      if (v.has("corr")) CHECK(d.corr == v["corr"].n, "invalid corr " << name);
    }
  }
  bool threw = false;
  try {
    encode(Frame("ACK", 1).set("seq", kMaxU53 + 1));
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "encode refuses a u53 of 2^53");

  std::cout << frames.a.size() << " frame vectors, " << invalid.a.size() << " invalid inputs: "
            << (failures == 0 ? "ok" : std::to_string(failures) + " failures") << std::endl;
  return failures == 0 ? 0 : 1;
}
