// Interop agent: the scriptable face of the library that test/interop/matrix.test.ts drives.
// Same commands and output as clients/python/switchboard_client/agent.py:
//   switchboard-cpp-agent --host H --port P register --name N                 -> WELCOME <id> <token>
//   ... --name N --token T send --to NAME --text TEXT [--expect-receipt CODE] -> ACCEPTED <status> <seq> / RECEIPT <code>
//   ... --name N --token T recv --count N [--poll]                            -> READY / MSG <fromName>\t<text>
//   ... --name N --token T set-password --new-password P [--password CURRENT] -> PASSWORD set
//   ... --name N --token T history --with W [--limit L]   -> HIST <seq> <from> <to> <flags>\t<text>, PAGE <more> <n>,
//                                                            HISTORY <total>
//   ... --name N --token T devices                        -> DEVICE <id> <current 0|1>\t<label> ..., DEVICES <n>
// Instead of --token, --password P logs in with the password as a new device and first prints WELCOME <id> <token>.
// Exit 0 when what was asked happened, 1 on timeout, 2 on an error.
#include <cstdio>
#include <iostream>
#include <string>

#include "switchboard/client.hpp"

using namespace switchboard;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", name, token, cmd, to, text, password, newPassword, with;
  int port = 7070, expect = 0, count = 1, limit = 50;
  double timeoutS = 15;
  bool poll = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "ERROR " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") host = next();
    else if (a == "--port") port = std::stoi(next());
    else if (a == "--name") name = next();
    else if (a == "--token") token = next();
    else if (a == "--timeout") timeoutS = std::stod(next());
    else if (a == "--to") to = next();
    else if (a == "--text") text = next();
    else if (a == "--expect-receipt") expect = std::stoi(next());
    else if (a == "--count") count = std::stoi(next());
    else if (a == "--poll") poll = true;
    else if (a == "--password") password = next();
    else if (a == "--new-password") newPassword = next();
    else if (a == "--with") with = next();
    else if (a == "--limit") limit = std::stoi(next());
    else if (a == "register" || a == "send" || a == "recv" || a == "set-password" || a == "history" || a == "devices")
      cmd = a;
    else {
      std::cerr << "ERROR unknown argument " << a << "\n";
      return 2;
    }
  }
  auto out = [](const std::string& line) { std::cout << line << std::endl; };
  auto deadline = Clock::now() + std::chrono::milliseconds(long(timeoutS * 1000));
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  try {
    Client c(host, uint16_t(port), std::chrono::milliseconds(long(timeoutS * 1000)));
    if (cmd == "register") {
      Welcome w = c.registerUser(name);
      out("WELCOME " + std::to_string(w.id) + " " + w.token);
      c.bye();
      return 0;
    }
    if (!password.empty() && cmd != "set-password") {
      Welcome w = c.loginPassword(name, password, poll);
      out("WELCOME " + std::to_string(w.id) + " " + w.token);
    } else {
      c.login(token, 0, name, poll);
    }
    if (cmd == "set-password") {
      c.setPassword(newPassword, password);
      out("PASSWORD set");
      c.bye();
      return 0;
    }
    if (cmd == "history") {
      Address addr = with.empty() ? Address::all() : Address::parse(with);
      uint64_t before = 0;
      size_t total = 0;
      for (;;) {
        HistoryPage page = c.history(addr, before, uint16_t(limit));
        for (auto& m : page.messages)
          out("HIST " + std::to_string(m.seq) + " " + m.fromName + " " + std::to_string(m.to) + " " +
              std::to_string(m.flags) + "\t" + m.text());
        out("PAGE " + std::to_string(page.more ? 1 : 0) + " " + std::to_string(page.messages.size()));
        total += page.messages.size();
        if (!page.more || page.messages.empty()) break;
        before = page.messages.back().seq;
      }
      out("HISTORY " + std::to_string(total));
      c.bye();
      return 0;
    }
    if (cmd == "devices") {
      auto devices = c.devices();
      for (auto& d : devices)
        out("DEVICE " + std::to_string(d.id) + " " + (d.current ? "1" : "0") + "\t" + d.label);
      out("DEVICES " + std::to_string(devices.size()));
      c.bye();
      return 0;
    }
    if (cmd == "send") {
      Accepted acc = c.send(Address::parse(to), text, expect != 0);
      out("ACCEPTED " + acc.status + " " + std::to_string(acc.seq));
      if (expect == 0) {
        c.bye();
        return 0;
      }
      while (left().count() > 0) {
        auto ev = c.nextEvent(left());
        if (!ev) break;
        if (ev->kind == Event::Closed) break;
        if (ev->kind == Event::ReceiptEvent && ev->receipt.msgId == acc.msgId) {
          out("RECEIPT " + std::to_string(ev->receipt.status));
          if (ev->receipt.status == expect) {
            c.bye();
            return 0;
          }
        }
      }
      out("TIMEOUT");
      return 1;
    }
    if (cmd != "recv") {
      std::cerr << "ERROR give a command: register, send, recv, set-password, history or devices\n";
      return 2;
    }
    out("READY");
    int got = 0;
    while (got < count && left().count() > 0) {
      std::vector<Message> msgs;
      if (poll) {
        msgs = c.take(uint16_t(count - got), false, 500);
      } else {
        auto ev = c.nextEvent(left());
        if (!ev || ev->kind == Event::Closed) break;
        if (ev->kind == Event::MessageEvent) msgs.push_back(ev->message);
      }
      for (auto& m : msgs)
        if (m.kind == Kind::Text) {
          out("MSG " + m.fromName + "\t" + m.text());
          got++;
        }
    }
    if (got < count) {
      out("TIMEOUT");
      return 1;
    }
    c.bye();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ERROR " << e.what() << "\n";
    return 2;
  }
}
