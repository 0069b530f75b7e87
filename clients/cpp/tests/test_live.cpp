// The client against a live server: register, resume, receipts (200, 202), offline then poll, room, topic,
// rename, who, errors. Starts `node bin/switchboard.js serve` itself unless SB_PORT names a running one.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <regex>

#include "switchboard/client.hpp"

using namespace switchboard;
using namespace std::chrono_literals;

static int failures = 0;
#define CHECK(cond, what)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      failures++;                                                  \
      std::cerr << "FAIL " << what << " (" #cond ")" << std::endl; \
    }                                                              \
  } while (0)

static pid_t serverPid = 0;
static std::string dataDir;

static uint16_t startServer() {
  if (const char* p = std::getenv("SB_PORT")) return uint16_t(std::atoi(p));
  char tmpl[] = "/tmp/sb-cpp-XXXXXX";
  dataDir = mkdtemp(tmpl);
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  serverPid = fork();
  if (serverPid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::string bin = std::string(SB_REPO_ROOT) + "/bin/switchboard.js";
    execlp("node", "node", bin.c_str(), "serve", "--port", "0", "--http-port", "-1", "--data-dir", dataDir.c_str(),
           "--log-level", "warn", "--ack-timeout", "1000", (char*)nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char line[512];
  std::regex re(R"(native\s+listening on [\d.]+:(\d+))");
  while (fgets(line, sizeof line, out) != nullptr) {
    std::cmatch m;
    if (std::regex_search(line, m, re)) return uint16_t(std::stoi(m[1].str()));
  }
  throw std::runtime_error("the server did not start");
}

static void stopServer() {
  if (serverPid > 0) {
    kill(serverPid, SIGTERM);
    waitpid(serverPid, nullptr, 0);
    std::string cmd = "rm -rf '" + dataDir + "'";
    if (system(cmd.c_str()) != 0) std::cerr << "could not remove " << dataDir << "\n";
  }
}

static std::string uniq(const std::string& p) {
  static std::mt19937 rng(std::random_device{}());
  return p + std::to_string(rng() % 100000000);
}

template <class Pred>
static std::optional<Event> waitFor(Client& c, Pred pred, std::chrono::milliseconds timeout = 8s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    auto ev = c.nextEvent(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
    if (!ev || ev->kind == Event::Closed) return ev;
    if (pred(*ev)) return ev;
  }
  return std::nullopt;
}

static bool receiptFor(const Event& e, uint64_t msgId, uint16_t status) {
  return e.kind == Event::ReceiptEvent && e.receipt.msgId == msgId && e.receipt.status == status;
}

int main() {
  uint16_t port;
  try {
    port = startServer();
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  try {
    Client alice("127.0.0.1", port), bob("127.0.0.1", port);
    Welcome wa = alice.registerUser(uniq("alice")), wb = bob.registerUser(uniq("bob"));
    CHECK(!wa.token.empty() && wa.id != wb.id, "register");

    Accepted acc = alice.send(Address::named(wb.name), "h\xc3\xa9llo bob", true);
    CHECK(acc.status == "queued", "send to an online user: " << acc.status);
    auto m = waitFor(bob, [](const Event& e) { return e.kind == Event::MessageEvent; });
    CHECK(m && m->kind == Event::MessageEvent && m->message.text() == "h\xc3\xa9llo bob" && m->message.fromName == wa.name,
          "bob gets the message");
    CHECK(waitFor(alice, [&](const Event& e) { return receiptFor(e, acc.msgId, 200); }), "alice gets 200");

    bob.bye();
    Accepted off = alice.send(Address::named(wb.name), "while you were out", true);
    CHECK(off.status == "stored", "send to an offline user: " << off.status);
    CHECK(waitFor(alice, [&](const Event& e) { return receiptFor(e, off.msgId, 202); }), "alice gets 202");

    Client bob2("127.0.0.1", port);
    Welcome w2 = bob2.login(wb.token, wb.id, "", true);
    CHECK(w2.id == wb.id && w2.name == wb.name && w2.token.empty(), "login by id");
    std::vector<Message> taken;
    for (int i = 0; i < 10 && taken.empty(); i++) taken = bob2.take(10, false, 500);
    CHECK(taken.size() == 1 && taken[0].text() == "while you were out", "bob takes the waiting message");
    CHECK(waitFor(alice, [&](const Event& e) { return receiptFor(e, off.msgId, 200); }), "alice gets 200 after the take");
    CHECK(bob2.take(10).empty(), "queue is empty after take");

    Client carol("127.0.0.1", port);
    Welcome wc = carol.registerUser(uniq("carol"));
    bool seen = false;
    for (auto& u : alice.who()) seen = seen || u.name == wc.name;
    CHECK(seen, "who lists carol");
    alice.send(Address::all(), "hi room");
    auto room = waitFor(carol, [](const Event& e) { return e.kind == Event::MessageEvent && e.message.text() == "hi room"; });
    CHECK(room && room->message.seq == 0 && room->message.to == kAllId, "room message");
    std::string topic = uniq("news");
    carol.subscribe(topic);
    CHECK(alice.send(Address::topic(topic), "extra").recipients == 1, "topic has one subscriber");
    auto t = waitFor(carol, [&](const Event& e) { return e.kind == Event::MessageEvent && e.message.topic == topic; });
    CHECK(t && t->message.text() == "extra", "topic message");
    std::string nn = uniq("ren");
    CHECK(alice.rename(nn) == nn && alice.whoami().name == nn, "rename");

    try {
      carol.registerUser("x");
      CHECK(false, "a second REGISTER on one connection is refused");
    } catch (const ServerError& e) {
      CHECK(e.name == "SB_ERR_CONFLICT", "conflict: " << e.what());
    }
    try {
      alice.send(Address::named(uniq("nobody")), "x");
      CHECK(false, "unknown recipient is refused");
    } catch (const ServerError& e) {
      CHECK(e.name == "SB_ERR_UNKNOWN_RECIPIENT", "unknown recipient: " << e.what());
    }
    Client bad("127.0.0.1", port);
    try {
      bad.login("wrong", 0, wc.name);
      CHECK(false, "wrong token is refused");
    } catch (const ServerError& e) {
      CHECK(e.name == "SB_ERR_AUTH", "auth: " << e.what());
    }
  } catch (const std::exception& e) {
    failures++;
    std::cerr << "FAIL exception: " << e.what() << "\n";
  }
  stopServer();
  std::cout << "live: " << (failures == 0 ? "ok" : std::to_string(failures) + " failures") << std::endl;
  return failures == 0 ? 0 : 1;
}
