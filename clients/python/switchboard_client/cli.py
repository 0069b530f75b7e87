"""switchboard-py: a command-line chat over the native protocol.

Type a line to talk to the room (ALL). Commands:
  /to NAME TEXT   a private message (with a receipt)     /who            who is online
  /t TOPIC TEXT   to a topic's subscribers               /rename NAME    change your name
  /sub TOPIC      subscribe (/unsub TOPIC)               /whoami         your id and name
  /take [N]       poll queued messages (--poll mode)     /quit           end the session
The token from registration is kept in the state file, so the next start resumes the same user.
"""
import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from .client import Client, Receipt, SwitchboardError
from .codec import Frame, Message
from .frames import RECEIPT_STATUS, Kind

DEFAULT_STATE = os.path.join(os.path.expanduser("~"), ".switchboard-py.json")


def _load(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data: Dict[str, Any] = json.load(f)
            return data
    except (OSError, ValueError):
        return {}


def _save(path: str, data: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a secret
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _clock(ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(ms / 1000.0))


def describe(ev: Any) -> Optional[str]:
    """One line for an event, or None for those not worth showing."""
    if isinstance(ev, Message):
        if ev.kind == Kind.RECEIPT:  # a receipt taken by polling: its body is the receipt as JSON
            try:
                r = json.loads(ev.text)
                return "[receipt] message %s to %s: %s %s" % (r.get("msgId"), r.get("recipientName"), r.get("status"),
                                                            RECEIPT_STATUS.get(r.get("status", 0), ""))
            except ValueError:
                return None
        where = "#" + ev.topic if ev.topic else ("room" if ev.to == 0xFFFFFFFF else "private")
        return "%s [%s] %s: %s" % (_clock(ev.ts), where, ev.fromName, ev.text)
    if isinstance(ev, Receipt):
        return "[receipt] message %d to %s: %d %s" % (ev.msg_id, ev.recipient_name, ev.status,
                                                      RECEIPT_STATUS.get(ev.status, ""))
    if isinstance(ev, Frame):
        if ev.type == "NOTICE":
            return "[notice] %s" % ev["text"]
        if ev.type == "RENAMED":
            return "[renamed] %s is now %s" % (ev["oldName"], ev["newName"])
        if ev.type == "PRESENCE":
            return "[presence] %s is %s" % (ev["name"], "online" if ev["online"] else "offline")
        if ev.type == "CLOSING":
            return "[closed] %s: %s" % (ev["reason"], ev["text"])
        if ev.type == "ERROR":
            return "[error] %s" % ev["message"]
    return None


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="switchboard-py", description="Switchboard chat (native protocol)",
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=os.environ.get("SWITCHBOARD_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("SWITCHBOARD_PORT", "7070")))
    p.add_argument("--name", help="name to register (first run) ")
    p.add_argument("--state", default=DEFAULT_STATE, help="where id and token are kept (default %(default)s)")
    p.add_argument("--poll", action="store_true", help="do not receive pushed messages; use /take")
    a = p.parse_args(argv)

    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    key = "%s:%d" % (a.host, a.port)
    state = _load(a.state)
    try:
        c = Client(a.host, a.port)
        me = state.get(key)
        if me and (a.name is None or a.name == me.get("name")):
            w = c.login(me["token"], user_id=me["id"], poll=a.poll)
            say("welcome back, %s (id %d) on %s" % (w.name, w.id, w.server))
        else:
            name = a.name or input("name: ").strip()
            w = c.register(name, poll=a.poll)
            state[key] = {"id": w.id, "name": w.name, "token": w.token}
            _save(a.state, state)
            say("registered as %s (id %d) on %s; token saved in %s" % (w.name, w.id, w.server, a.state))
    except (SwitchboardError, OSError) as e:
        sys.stderr.write("switchboard-py: %s\n" % e)
        return 1

    quitting = threading.Event()

    def pump() -> None:
        while True:
            ev = c.events.get()
            if ev is None:
                if not quitting.is_set():
                    say("[disconnected] %s" % (c.close_reason or "connection closed"))
                return
            line = describe(ev)
            if line:
                say(line)

    threading.Thread(target=pump, daemon=True).start()

    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if c.closed:
            break
        cmd, _, rest = line.partition(" ") if line.startswith("/") else ("", "", line)
        try:
            if cmd == "":
                acc = c.send("ALL", rest)
                say("-> room (%d online)" % acc.recipients)
            elif cmd in ("/to", "/msg"):
                who, _, text = rest.partition(" ")
                acc = c.send(who, text, receipt=True)
                say("-> %s: %s (message %d, seq %d)" % (who, acc.status, acc.msg_id, acc.seq))
            elif cmd == "/t":
                topic, _, text = rest.partition(" ")
                acc = c.send("#" + topic.lstrip("#"), text, receipt=True)
                say("-> #%s: %s to %d subscribers" % (topic.lstrip("#"), acc.status, acc.recipients))
            elif cmd == "/sub":
                c.subscribe(rest.strip())
                say("subscribed to #%s" % rest.strip())
            elif cmd == "/unsub":
                c.unsubscribe(rest.strip())
                say("unsubscribed from #%s" % rest.strip())
            elif cmd == "/who":
                users = c.who()
                say("%d online: %s" % (len(users), ", ".join("%s (%d, %s)" % (u.name, u.id, u.protocol)
                                                               for u in users)))
            elif cmd == "/whoami":
                u = c.whoami()
                say("you are %s (id %d)" % (u.name, u.id))
            elif cmd == "/rename":
                name = c.rename(rest.strip())
                if key in state:
                    state[key]["name"] = name
                    _save(a.state, state)
                say("you are now %s" % name)
            elif cmd == "/take":
                msgs = c.take(int(rest) if rest.strip() else 100)
                for m in msgs:
                    d = describe(m)
                    if d:
                        say(d)
                say("(%d taken)" % len(msgs))
            elif cmd in ("/quit", "/exit"):
                break
            else:
                say("unknown command %s (see --help)" % cmd)
        except SwitchboardError as e:
            say("[error] %s" % e)
        except (OSError, TimeoutError) as e:
            say("[error] %s" % e)
            break
    quitting.set()
    c.bye()
    return 0


if __name__ == "__main__":
    sys.exit(main())
