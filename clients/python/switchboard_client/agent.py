"""Interop agent: the small, scriptable face of the library that test/interop/matrix.test.ts drives.

    agent --host H --port P register --name N                  -> WELCOME <id> <token>
    agent ... --name N --token T send --to NAME --text TEXT [--expect-receipt CODE]
                                                               -> ACCEPTED <status> <seq> / RECEIPT <code>
    agent ... --name N --token T recv --count N [--poll]       -> READY / MSG <fromName>\t<text> ...
    agent ... --name N --token T set-password --new-password P [--password CURRENT]  -> PASSWORD set
    agent ... --name N --token T history --with W [--limit L]  -> HIST <seq> <from> <to> <flags>\t<text> (newest
                                                                  first), PAGE <more> <count> after each page,
                                                                  HISTORY <total> when no page has more
    agent ... --name N --token T devices                       -> DEVICE <id> <current 0|1>\t<label> ..., DEVICES <n>

Instead of --token, --password P logs in with the password as a new device and first prints WELCOME <id> <token>
(that device's token). Exit 0 when what was asked happened, 1 on timeout, 2 on an error. The C++ and C# agents behave the same.
"""
import argparse
import sys
import time
from typing import List, Optional

from .client import Client, Receipt, SwitchboardError
from .codec import Message
from .frames import Kind


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="switchboard-agent")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7070)
    p.add_argument("--name", default="")
    p.add_argument("--token", default="")
    p.add_argument("--timeout", type=float, default=15.0)
    # one flat set of options, in any order around the command, as the C++ and C# agents take them
    p.add_argument("cmd", choices=("register", "send", "recv", "set-password", "history", "devices"))
    p.add_argument("--to", default="")
    p.add_argument("--text", default="")
    p.add_argument("--expect-receipt", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--poll", action="store_true")
    p.add_argument("--password", default="")
    p.add_argument("--new-password", default="")
    p.add_argument("--with", dest="with_", default="")
    p.add_argument("--limit", type=int, default=50)
    # A token (base64url) or a text may begin with "-", which argparse would take for an option: glue every
    # option that takes a value to its value ("--token=-x…"), as the C++ and C# agents need no such help.
    raw = list(sys.argv[1:] if argv is None else argv)
    takes_value = {"--host", "--port", "--name", "--token", "--timeout", "--to", "--text", "--expect-receipt",
                   "--count", "--password", "--new-password", "--with", "--limit"}
    glued: List[str] = []
    i = 0
    while i < len(raw):
        if raw[i] in takes_value and i + 1 < len(raw):
            glued.append(f"{raw[i]}={raw[i + 1]}")
            i += 2
        else:
            glued.append(raw[i])
            i += 1
    a = p.parse_args(glued)

    def out(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    deadline = time.monotonic() + a.timeout
    try:
        c = Client(a.host, a.port, timeout=a.timeout)
        if a.cmd == "register":
            w = c.register(a.name)
            out("WELCOME %d %s" % (w.id, w.token))
            c.bye()
            return 0
        if a.password and a.cmd != "set-password":
            w = c.login_password(a.name, a.password, poll=a.poll)
            out("WELCOME %d %s" % (w.id, w.token))
        else:
            c.login(a.token, name=a.name, poll=a.poll)
        if a.cmd == "set-password":
            c.set_password(a.new_password, a.password or None)
            out("PASSWORD set")
            c.bye()
            return 0
        if a.cmd == "history":
            total, before = 0, 0
            while True:
                page = c.history(a.with_ or None, before=before, limit=a.limit)
                for m in page.messages:
                    out("HIST %d %s %d %d\t%s" % (m.seq, m.fromName, m.to, m.flags, m.text))
                out("PAGE %d %d" % (1 if page.more else 0, len(page.messages)))
                total += len(page.messages)
                if not page.more or not page.messages:
                    break
                before = page.messages[-1].seq
            out("HISTORY %d" % total)
            c.bye()
            return 0
        if a.cmd == "devices":
            devices = c.devices()
            for d in devices:
                out("DEVICE %d %d\t%s" % (d["id"], 1 if d.get("current") else 0, d.get("label", "")))
            out("DEVICES %d" % len(devices))
            c.bye()
            return 0
        if a.cmd == "send":
            acc = c.send(a.to, a.text, receipt=a.expect_receipt != 0)
            out("ACCEPTED %s %d" % (acc.status, acc.seq))
            if a.expect_receipt == 0:
                c.bye()
                return 0
            while time.monotonic() < deadline:
                ev = c.next_event(timeout=max(0.0, deadline - time.monotonic()))
                if ev is None and c.closed:
                    break
                if isinstance(ev, Receipt) and ev.msg_id == acc.msg_id:
                    out("RECEIPT %d" % ev.status)
                    if ev.status == a.expect_receipt:
                        c.bye()
                        return 0
            out("TIMEOUT")
            return 1
        got = 0
        out("READY")
        while got < a.count and time.monotonic() < deadline:
            if a.poll:
                msgs = c.take(a.count - got, wait_ms=500)
            else:
                ev = c.next_event(timeout=max(0.0, deadline - time.monotonic()))
                if ev is None and c.closed:
                    break
                msgs = [ev] if isinstance(ev, Message) else []
            for m in msgs:
                if m.kind == Kind.TEXT:
                    out("MSG %s\t%s" % (m.fromName, m.text))
                    got += 1
        if got < a.count:
            out("TIMEOUT")
            return 1
        c.bye()
        return 0
    except (SwitchboardError, OSError) as e:
        sys.stderr.write("ERROR %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
