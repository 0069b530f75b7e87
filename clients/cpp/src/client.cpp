#include "switchboard/client.hpp"

#include "switchboard/json.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>

namespace switchboard {

Client::Client(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) : timeout_(timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) throw ConnectionError(std::string("cannot resolve ") + host + ": " + gai_strerror(rc));
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd_ = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd_ < 0) continue;
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd_);
    fd_ = -1;
  }
  freeaddrinfo(res);
  if (fd_ < 0) throw ConnectionError("cannot connect to " + host + ":" + std::to_string(port) + ": " + strerror(errno));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // msgIds unique across restarts too (as the TypeScript SDK does): receipts name messages by msgId, and
  // receipts for an earlier run's messages may still be waiting for this user.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  msgIds_ = uint64_t(ms.count()) * 1024 + std::random_device{}() % 1024;
  reader_ = std::thread([this] { readLoop(); });
}

Client::~Client() {
  close();
  if (reader_.joinable()) reader_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (fd_ >= 0) ::close(fd_);
}

void Client::close() {
  bool was = closed_.exchange(true);
  if (!was && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes the reader; the fd is closed in the destructor
  cv_.notify_all();
}

std::string Client::closeReason() const {
  std::lock_guard<std::mutex> g(mu_);
  return closeReason_;
}

void Client::write(const Frame& f) {
  Bytes b = encode(f);
  std::lock_guard<std::mutex> g(writeMu_);
  size_t off = 0;
  while (off < b.size()) {
    ssize_t n = ::send(fd_, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ConnectionError(std::string("write failed: ") + strerror(errno));
    off += size_t(n);
  }
}

Frame Client::call(Frame f, std::chrono::milliseconds extra) {
  if (closed_) throw ConnectionError("connection closed: " + closeReason());
  uint32_t corr = ++corr_;
  if (corr == 0) corr = ++corr_;  // 0 is for unsolicited frames
  f.corr = corr;
  {
    std::lock_guard<std::mutex> g(mu_);
    pending_[corr] = std::nullopt;
  }
  try {
    write(f);
  } catch (...) {
    std::lock_guard<std::mutex> g(mu_);
    pending_.erase(corr);
    throw;
  }
  std::unique_lock<std::mutex> lk(mu_);
  bool got = cv_.wait_for(lk, timeout_ + extra, [&] { return pending_[corr].has_value() || closed_; });
  std::optional<Frame> answer = std::move(pending_[corr]);
  pending_.erase(corr);
  lk.unlock();
  if (!answer) throw ConnectionError(got ? "connection closed: " + closeReason() : "no answer to " + f.type + " in time");
  if (answer->type == "ERROR") throw ServerError(uint16_t(answer->num("code")), answer->str("message"), answer->str("limit"));
  return std::move(*answer);
}

void Client::readLoop() {
  FrameReader reader;
  uint8_t buf[65536];
  std::string reason = "connection closed";
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bool bad = false;
    for (auto& d : reader.push(buf, size_t(n))) {
      if (d.status == DecodeResult::Ok) dispatch(std::move(d.frame));
      else if (d.status == DecodeResult::Malformed) {
        reason = "malformed frame from the server: " + d.detail;
        bad = true;
      }
    }
    if (bad) break;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    if (closeReason_.empty()) closeReason_ = reason;
    events_.push_back(Event{});  // kind Closed
  }
  closed_ = true;
  cv_.notify_all();
}

void Client::dispatch(Frame f) {
  std::unique_lock<std::mutex> lk(mu_);
  if (f.corr != 0) {
    auto it = pending_.find(f.corr);
    if (it != pending_.end()) {
      it->second = std::move(f);
      lk.unlock();
      cv_.notify_all();
      return;
    }
  }
  if (f.type == "PONG") return;
  Event ev;
  uint64_t toAck = 0;
  if (f.type == "DELIVER") {
    ev.kind = Event::MessageEvent;
    ev.message = f.get<Message>("msg");
    toAck = ev.message.seq;
  } else if (f.type == "RECEIPT") {
    ev.kind = Event::ReceiptEvent;
    Receipt& r = ev.receipt;
    r.msgId = f.num("msgId");
    r.status = uint16_t(f.num("status"));
    r.recipient = uint32_t(f.num("recipient"));
    r.recipientName = f.str("recipientName");
    r.seq = f.num("seq");
    r.at = f.num("at");
    r.topic = f.str("topic");
    toAck = f.num("ackSeq");
  } else {
    if (f.type == "CLOSING") closeReason_ = f.str("reason") + ": " + f.str("text");
    ev.kind = Event::FrameEvent;
    ev.frame = std::move(f);
  }
  lk.unlock();
  // Acknowledge before the event is visible, so that a bye() right after reading it cannot overtake the ACK.
  if (autoAck && toAck != 0) {
    try {
      ack(toAck);
    } catch (const std::exception&) {
    }
  }
  lk.lock();
  events_.push_back(std::move(ev));
  lk.unlock();
  cv_.notify_all();
}

std::optional<Event> Client::nextEvent(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !events_.empty(); })) return std::nullopt;
  Event ev = std::move(events_.front());
  if (ev.kind != Event::Closed) events_.pop_front();  // Closed stays, for every later call
  return ev;
}

Welcome Client::welcomed(const Frame& f) {
  Welcome w;
  w.id = uint32_t(f.num("id"));
  w.name = f.str("name");
  w.token = f.str("token");
  w.heartbeatMs = uint32_t(f.num("heartbeatMs"));
  w.server = f.str("server");
  if (w.heartbeatMs > 0 && !heartbeat_.joinable()) startHeartbeat(w.heartbeatMs);
  return w;
}

void Client::startHeartbeat(uint32_t ms) {
  heartbeat_ = std::thread([this, ms] {
    std::unique_lock<std::mutex> lk(mu_);
    while (!closed_) {
      if (cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return bool(closed_); })) break;
      lk.unlock();
      try {
        write(Frame("PING", 0));  // answered by PONG corr 0, which dispatch() drops
      } catch (const std::exception&) {
      }
      lk.lock();
    }
  });
}

Welcome Client::registerUser(const std::string& name, bool poll) {
  Frame f("REGISTER", 0);
  f.set("version", uint64_t(kProtocolVersion)).set("flags", uint64_t(poll ? 1 : 0)).set("name", name);
  return welcomed(call(std::move(f)));
}

Welcome Client::login(const std::string& token, uint32_t id, const std::string& name, bool poll) {
  Frame f("LOGIN", 0);
  f.set("version", uint64_t(kProtocolVersion)).set("flags", uint64_t(poll ? 1 : 0)).set("id", uint64_t(id));
  f.set("name", name).set("token", token);
  return welcomed(call(std::move(f)));
}

Welcome Client::loginPassword(const std::string& name, const std::string& password, bool poll, bool sendOnly) {
  uint8_t flags = SessionFlag::Password | (poll ? SessionFlag::Poll : 0) | (sendOnly ? SessionFlag::SendOnly : 0);
  Frame f("LOGIN", 0);
  f.set("version", uint64_t(kProtocolVersion)).set("flags", uint64_t(flags)).set("id", uint64_t(0));
  f.set("name", name).set("token", password);
  return welcomed(call(std::move(f)));
}

HistoryPage Client::history(const Address& with, uint64_t before, uint16_t limit) {
  Frame f("HISTORY", 0);
  f.set("with", with).set("before", before).set("limit", uint64_t(limit));
  Frame r = call(std::move(f));
  HistoryPage page;
  page.messages = r.get<std::vector<Message>>("msgs");
  page.more = r.num("more") != 0;
  return page;
}

Accepted Client::send(const Address& to, const std::string& text, bool receipt, uint64_t msgId) {
  Frame f("SEND", 0);
  f.set("msgId", msgId != 0 ? msgId : ++msgIds_).set("to", to).set("kind", uint64_t(Kind::Text));
  f.set("flags", uint64_t(receipt ? send_flag::RECEIPT : 0)).set("ttlMs", uint64_t(0)).set("notBefore", uint64_t(0));
  f.set("body", Bytes(text.begin(), text.end()));
  Frame r = call(std::move(f));
  Accepted a;
  a.msgId = r.num("msgId");
  a.status = sendStatusName(r.num("status"));
  a.seq = r.num("seq");
  a.recipients = uint32_t(r.num("recipients"));
  return a;
}

void Client::ack(uint64_t seq) { write(Frame("ACK", 0).set("seq", seq)); }

std::vector<Message> Client::take(uint16_t max, bool peek, uint32_t waitMs) {
  Frame f("TAKE", 0);
  f.set("max", uint64_t(max)).set("mode", uint64_t(peek ? 1 : 0)).set("waitMs", uint64_t(waitMs));
  return call(std::move(f), std::chrono::milliseconds(waitMs)).get<std::vector<Message>>("msgs");
}

Frame Client::request(uint8_t o, const std::string& arg) {
  return call(Frame("REQUEST", 0).set("op", uint64_t(o)).set("arg", arg));
}

std::vector<User> Client::who() { return request(op::WHO).get<std::vector<User>>("users"); }

User Client::whoami() {
  auto users = request(op::WHOAMI).get<std::vector<User>>("users");
  if (users.empty()) throw ConnectionError("WHOAMI answered no user");
  return users.front();
}

std::string Client::rename(const std::string& newName) { return request(op::RENAME, newName).str("text"); }
void Client::subscribe(const std::string& topic) { request(op::SUBSCRIBE, topic); }
void Client::unsubscribe(const std::string& topic) { request(op::UNSUBSCRIBE, topic); }

std::vector<Device> Client::devices() {
  json::Value list = json::parse(request(op::DEVICES).str("text"));
  std::vector<Device> out;
  for (auto& d : list.a) {
    Device dev;
    dev.id = d["id"].n;
    if (d.has("label")) dev.label = d["label"].s;
    if (d.has("createdAt")) dev.createdAt = d["createdAt"].n;
    if (d.has("lastSeen")) dev.lastSeen = d["lastSeen"].n;
    dev.online = d.has("online") && d["online"].b;
    dev.current = d.has("current") && d["current"].b;
    out.push_back(dev);
  }
  return out;
}

void Client::revoke(uint64_t deviceId) { request(op::REVOKE, std::to_string(deviceId)); }

void Client::setPassword(const std::string& password, const std::string& current) {
  std::string arg = "{\"password\":" + json::quote(password);
  if (!current.empty()) arg += ",\"current\":" + json::quote(current);
  request(op::PASSWORD, arg + "}");
}

void Client::bye() {
  try {
    if (!closed_) {
      write(Frame("BYE", 0));
      // Let the server read everything (an ACK just before BYE included) and close first: closing a socket
      // with unread input sends a reset, which may discard what the server has not read yet.
      ::shutdown(fd_, SHUT_WR);
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::seconds(2), [&] { return bool(closed_); });
    }
  } catch (const std::exception&) {
  }
  close();
}

}  // namespace switchboard
