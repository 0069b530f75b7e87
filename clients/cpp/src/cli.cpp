// switchboard-cpp: a command-line chat over the native protocol.
// A line without a slash goes to the room (ALL). Commands: /to NAME TEXT, /t TOPIC TEXT, /sub TOPIC,
// /unsub TOPIC, /take [N], /who, /whoami, /rename NAME, /quit. The token from registration is kept in the
// state file (~/.switchboard-cpp, or --state), so the next start resumes the same user.
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "switchboard/client.hpp"

using namespace switchboard;

namespace {

std::mutex outMu;
void say(const std::string& line) {
  std::lock_guard<std::mutex> g(outMu);
  std::cout << line << std::endl;
}

std::string clock(uint64_t ms) {
  std::time_t t = std::time_t(ms / 1000);
  char buf[8];
  std::strftime(buf, sizeof buf, "%H:%M", std::localtime(&t));
  return buf;
}

std::string describe(const Message& m) {
  if (m.kind == Kind::Receipt) return "[receipt] " + m.text();  // a receipt taken by polling: its body is JSON
  std::string where = !m.topic.empty() ? "#" + m.topic : (m.to == kAllId ? "room" : "private");
  return clock(m.ts) + " [" + where + "] " + m.fromName + ": " + m.text();
}

struct State {
  std::string key, name, token;
  uint32_t id = 0;
};

// The state file: one line per server, "host:port id token name".
std::vector<State> load(const std::string& path) {
  std::vector<State> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    State s;
    ls >> s.key >> s.id >> s.token;
    std::getline(ls >> std::ws, s.name);
    if (!s.token.empty()) out.push_back(s);
  }
  return out;
}

void save(const std::string& path, const std::vector<State>& all) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp, std::ios::trunc);
    for (auto& s : all) o << s.key << " " << s.id << " " << s.token << " " << s.name << "\n";
  }
  chmod(tmp.c_str(), 0600);  // the token is a secret
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const char* envHost = std::getenv("SWITCHBOARD_HOST");
  const char* envPort = std::getenv("SWITCHBOARD_PORT");
  const char* home = std::getenv("HOME");
  std::string host = envHost ? envHost : "127.0.0.1", name, statePath = std::string(home ? home : ".") + "/.switchboard-cpp";
  int port = envPort ? std::atoi(envPort) : 7070;
  bool poll = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--host" && i + 1 < argc) host = argv[++i];
    else if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (a == "--name" && i + 1 < argc) name = argv[++i];
    else if (a == "--state" && i + 1 < argc) statePath = argv[++i];
    else if (a == "--poll") poll = true;
    else {
      std::cout << "usage: switchboard-cpp [--host H] [--port P] [--name NAME] [--state FILE] [--poll]\n"
                   "  a line goes to the room; /to NAME TEXT, /t TOPIC TEXT, /sub TOPIC, /unsub TOPIC,\n"
                   "  /take [N], /who, /whoami, /rename NAME, /quit\n";
      return a == "--help" ? 0 : 2;
    }
  }
  std::string key = host + ":" + std::to_string(port);
  auto states = load(statePath);
  State* me = nullptr;
  for (auto& s : states)
    if (s.key == key && (name.empty() || name == s.name)) me = &s;

  std::unique_ptr<Client> c;
  try {
    c = std::make_unique<Client>(host, uint16_t(port));
    if (me != nullptr) {
      Welcome w = c->login(me->token, me->id, "", poll);
      say("welcome back, " + w.name + " (id " + std::to_string(w.id) + ") on " + w.server);
    } else {
      if (name.empty()) {
        std::cout << "name: " << std::flush;
        std::getline(std::cin, name);
      }
      Welcome w = c->registerUser(name, poll);
      states.push_back({key, w.name, w.token, w.id});
      me = &states.back();
      save(statePath, states);
      say("registered as " + w.name + " (id " + std::to_string(w.id) + ") on " + w.server + "; token saved in " + statePath);
    }
  } catch (const std::exception& e) {
    std::cerr << "switchboard-cpp: " << e.what() << "\n";
    return 1;
  }

  std::atomic<bool> quitting{false};
  std::thread pump([&] {
    for (;;) {
      auto ev = c->nextEvent(std::chrono::milliseconds(250));
      if (!ev) {
        if (quitting) return;
        continue;
      }
      switch (ev->kind) {
        case Event::MessageEvent: say(describe(ev->message)); break;
        case Event::ReceiptEvent:
          say("[receipt] message " + std::to_string(ev->receipt.msgId) + " to " + ev->receipt.recipientName + ": " +
              std::to_string(ev->receipt.status) + " " + receiptStatusName(ev->receipt.status));
          break;
        case Event::FrameEvent: {
          const Frame& f = ev->frame;
          if (f.type == "NOTICE") say("[notice] " + f.str("text"));
          else if (f.type == "RENAMED") say("[renamed] " + f.str("oldName") + " is now " + f.str("newName"));
          else if (f.type == "CLOSING" && !quitting) say("[closed] " + f.str("reason") + ": " + f.str("text"));
          else if (f.type == "ERROR") say("[error] " + f.str("message"));
          break;
        }
        case Event::Closed:
          if (!quitting) say("[disconnected] " + c->closeReason());
          return;
      }
    }
  });

  std::string line;
  while (!c->closed() && std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::string cmd, rest = line;
    if (line[0] == '/') {
      auto sp = line.find(' ');
      cmd = line.substr(0, sp);
      rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    }
    auto split = [](const std::string& s) {
      auto sp = s.find(' ');
      return std::make_pair(s.substr(0, sp), sp == std::string::npos ? std::string() : s.substr(sp + 1));
    };
    try {
      if (cmd.empty()) {
        Accepted a = c->send(Address::all(), rest);
        say("-> room (" + std::to_string(a.recipients) + " online)");
      } else if (cmd == "/to" || cmd == "/msg") {
        auto [who, text] = split(rest);
        Accepted a = c->send(Address::parse(who), text, true);
        say("-> " + who + ": " + a.status + " (message " + std::to_string(a.msgId) + ", seq " + std::to_string(a.seq) + ")");
      } else if (cmd == "/t") {
        auto [topic, text] = split(rest);
        if (!topic.empty() && topic[0] == '#') topic = topic.substr(1);
        Accepted a = c->send(Address::topic(topic), text, true);
        say("-> #" + topic + ": " + a.status + " to " + std::to_string(a.recipients) + " subscribers");
      } else if (cmd == "/sub") {
        c->subscribe(rest);
        say("subscribed to #" + rest);
      } else if (cmd == "/unsub") {
        c->unsubscribe(rest);
        say("unsubscribed from #" + rest);
      } else if (cmd == "/who") {
        auto users = c->who();
        std::string s = std::to_string(users.size()) + " online:";
        for (size_t i = 0; i < users.size(); i++)
          s += (i ? ", " : " ") + users[i].name + " (" + std::to_string(users[i].id) + ", " + users[i].protocol + ")";
        say(s);
      } else if (cmd == "/whoami") {
        User u = c->whoami();
        say("you are " + u.name + " (id " + std::to_string(u.id) + ")");
      } else if (cmd == "/rename") {
        std::string n = c->rename(rest);
        me->name = n;
        save(statePath, states);
        say("you are now " + n);
      } else if (cmd == "/take") {
        auto msgs = c->take(uint16_t(rest.empty() ? 100 : std::atoi(rest.c_str())));
        for (auto& m : msgs) say(describe(m));
        say("(" + std::to_string(msgs.size()) + " taken)");
      } else if (cmd == "/quit" || cmd == "/exit") {
        break;
      } else {
        say("unknown command " + cmd + " (see --help)");
      }
    } catch (const ServerError& e) {
      say(std::string("[error] ") + e.what());
    } catch (const std::exception& e) {
      say(std::string("[error] ") + e.what());
      break;
    }
  }
  quitting = true;
  c->bye();
  pump.join();
  return 0;
}
