// A tiny JSON reader (and string quoting) for what the protocol carries as JSON text — RESULT DEVICES, the
// PASSWORD request's argument — and for the test vectors: objects, arrays, strings (with \u escapes), numbers,
// true/false/null. Unsigned integers are kept exact as uint64_t (u53 values fit a double too, but parse
// exactly); a negative or fractional number is read past and kept as 0 (neg/frac say so).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchboard {
namespace json {

struct Value {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool b = false, neg = false, frac = false;
  uint64_t n = 0;
  std::string s;
  std::vector<Value> a;
  std::map<std::string, Value> o;
  const Value& operator[](const std::string& k) const {
    auto it = o.find(k);
    if (it == o.end()) throw std::runtime_error("missing key " + k);
    return it->second;
  }
  bool has(const std::string& k) const { return o.count(k) != 0; }
};

class Parser {
 public:
  explicit Parser(const std::string& t) : t_(t) {}
  Value parse() {
    Value v = value();
    ws();
    if (i_ != t_.size()) fail("trailing data");
    return v;
  }

 private:
  const std::string& t_;
  size_t i_ = 0;
  [[noreturn]] void fail(const std::string& why) { throw std::runtime_error("JSON: " + why + " at " + std::to_string(i_)); }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) i_++;
  }
  char peek() {
    ws();
    if (i_ >= t_.size()) fail("unexpected end");
    return t_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected ") + c);
    i_++;
  }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (t_.compare(i_, n, w) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) out += char(0xc0 | (cp >> 6)), out += char(0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out += char(0xe0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3f)), out += char(0x80 | (cp & 0x3f));
    else
      out += char(0xf0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3f)), out += char(0x80 | ((cp >> 6) & 0x3f)),
          out += char(0x80 | (cp & 0x3f));
  }
  uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("short \\u escape");
    uint32_t v = uint32_t(std::stoul(t_.substr(i_, 4), nullptr, 16));
    i_ += 4;
    return v;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (i_ < t_.size() && t_[i_] != '"') {
      char c = t_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = t_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && lit("\\u")) cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4() - 0xdc00);
          utf8(out, cp);
          break;
        }
        default: out += e;
      }
    }
    expect('"');
    return out;
  }
  Value value() {
    Value v;
    char c = peek();
    if (c == '{') {
      v.type = Value::Object;
      i_++;
      if (peek() == '}') return i_++, v;
      for (;;) {
        std::string k = str();
        expect(':');
        v.o[k] = value();
        if (peek() == ',') {
          i_++;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.type = Value::Array;
      i_++;
      if (peek() == ']') return i_++, v;
      for (;;) {
        v.a.push_back(value());
        if (peek() == ',') {
          i_++;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.type = Value::String;
      v.s = str();
      return v;
    }
    if (lit("true")) return v.type = Value::Bool, v.b = true, v;
    if (lit("false")) return v.type = Value::Bool, v;
    if (lit("null")) return v;
    if ((c >= '0' && c <= '9') || c == '-') {
      v.type = Value::Number;
      v.neg = c == '-';
      if (v.neg) i_++;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') v.n = v.n * 10 + uint64_t(t_[i_++] - '0');
      while (i_ < t_.size() && (t_[i_] == '.' || t_[i_] == 'e' || t_[i_] == 'E' || t_[i_] == '+' || t_[i_] == '-' ||
                                (t_[i_] >= '0' && t_[i_] <= '9')))
        v.frac = true, i_++;
      if (v.neg || v.frac) v.n = 0;
      return v;
    }
    fail("unexpected character");
  }
};

inline Value parse(const std::string& text) { return Parser(text).parse(); }

/// A JSON string literal for UTF-8 text (quotes, backslashes and control characters escaped).
inline std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += char(c);
  }
  return out + "\"";
}

}  // namespace json
}  // namespace switchboard
