// A blocking, thread-safe client over POSIX TCP sockets. One reader thread decodes frames: a reply (the corr
// of a pending request) wakes its caller; everything else (DELIVER, RECEIPT, NOTICE, CLOSING...) is queued
// as an Event. Pushed messages and queued receipts are acknowledged as they arrive (autoAck).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "switchboard/codec.hpp"

namespace switchboard {

namespace op {
constexpr uint8_t WHOAMI = 1, WHO = 2, RENAME = 3, END = 4, DELETE_ACCOUNT = 5, STATS = 6, SUBSCRIBE = 7,
                  UNSUBSCRIBE = 8, TOPICS = 9, SUBSCRIPTIONS = 10, BLOCK = 11, UNBLOCK = 12, BLOCKED = 13,
                  PRESENCE = 14, LAST_SEEN = 15, DEVICES = 16, REVOKE = 17, PASSWORD = 18;
}
namespace send_flag {
constexpr uint8_t RECEIPT = 1, READ_RECEIPT = 2, IDEMPOTENT = 4, TRANSIENT = 16;
}

/// The server answered ERROR.
class ServerError : public std::runtime_error {
 public:
  ServerError(uint16_t code, const std::string& message, const std::string& limit)
      : std::runtime_error(errorName(code) + ": " + message + (limit.empty() ? "" : " (limit " + limit + ")")),
        code(code),
        name(errorName(code)),
        limit(limit) {}
  uint16_t code;
  std::string name, limit;
};

/// The connection is gone, or an answer did not come in time.
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Welcome {
  uint32_t id = 0;
  // token: after REGISTER, or a password login (the new device's): keep it. Empty after a token LOGIN.
  std::string name, token, server;
  uint32_t heartbeatMs = 0;
};

struct Accepted {
  uint64_t msgId = 0, seq = 0;
  std::string status;  // delivered, queued, stored, scheduled, duplicate
  uint32_t recipients = 0;
};

struct Receipt {
  uint64_t msgId = 0, seq = 0, at = 0;
  uint16_t status = 0;  // 200 delivered, 202 stored, 300 not yet, 210 read, 404, 410, 507
  uint32_t recipient = 0;
  std::string recipientName, topic;
};

/// A page of history, newest first. more: older messages remain (ask again with before = the last seq).
struct HistoryPage {
  std::vector<Message> messages;
  bool more = false;
};

/// One of the user's devices (from REQUEST DEVICES; never its token).
struct Device {
  uint64_t id = 0, createdAt = 0, lastSeen = 0;
  std::string label;
  bool online = false, current = false;
};

/// An unsolicited event: a message, a receipt, or another frame (NOTICE, PRESENCE, RENAMED, READ_ELSEWHERE,
/// CLOSING, ...).
struct Event {
  enum Kind { MessageEvent, ReceiptEvent, FrameEvent, Closed } kind = Closed;
  Message message;
  Receipt receipt;
  Frame frame;
};

class Client {
 public:
  /// Connects at once; throws ConnectionError when it cannot.
  Client(const std::string& host, uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Welcome registerUser(const std::string& name, bool poll = false);
  /// Resume by id (or by name when id is 0) with the token from registration.
  Welcome login(const std::string& token, uint32_t id, const std::string& name = "", bool poll = false);
  /// Log in by name and password as a new device; the Welcome's token is that device's: keep it for login().
  Welcome loginPassword(const std::string& name, const std::string& password, bool poll = false,
                        bool sendOnly = false);

  Accepted send(const Address& to, const std::string& text, bool receipt = false, uint64_t msgId = 0);
  void ack(uint64_t seq);
  /// Poll (poll-mode sessions): the oldest queued messages, acknowledged unless peek.
  std::vector<Message> take(uint16_t max = 100, bool peek = false, uint32_t waitMs = 0);

  /// A page of this user's history, newest first: with a user or a topic, or everything (Address::all()).
  /// before: only seqs below it (0 = from the newest).
  HistoryPage history(const Address& with, uint64_t before = 0, uint16_t limit = 50);

  Frame request(uint8_t op, const std::string& arg = "");
  std::vector<Device> devices();
  /// Revoke a device: its token stops working and its sessions end.
  void revoke(uint64_t deviceId);
  /// Set a password; changing one needs the current one (empty: none given).
  void setPassword(const std::string& password, const std::string& current = "");
  std::vector<User> who();
  User whoami();
  std::string rename(const std::string& newName);
  void subscribe(const std::string& topic);
  void unsubscribe(const std::string& topic);
  /// End the session (the user stays registered) and close.
  void bye();

  /// The next event; nullopt on timeout. After the connection closes, an Event of kind Closed.
  std::optional<Event> nextEvent(std::chrono::milliseconds timeout);

  void close();
  bool closed() const { return closed_; }
  std::string closeReason() const;
  bool autoAck = true;

 private:
  Frame call(Frame f, std::chrono::milliseconds extra = std::chrono::milliseconds(0));
  void write(const Frame& f);
  void readLoop();
  void dispatch(Frame f);
  Welcome welcomed(const Frame& f);
  void startHeartbeat(uint32_t ms);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::atomic<bool> closed_{false};
  std::atomic<uint32_t> corr_{0};
  std::atomic<uint64_t> msgIds_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, std::optional<Frame>> pending_;  // corr -> answer (nullopt while waiting)
  std::deque<Event> events_;
  std::string closeReason_;
  std::mutex writeMu_;
  std::thread reader_, heartbeat_;
};

}  // namespace switchboard
