#!/usr/bin/env python3
"""Switchboard chat as a CGI program (RFC 3875): plain HTML for a person without any client.

Each request opens a native-protocol connection to Switchboard, logs in with the token from the session cookie
(poll mode: nothing is pushed, the inbox TAKEs), does one thing and says BYE. Pages:

  GET                      log-in form (no cookie) or the inbox: new messages (taken now) and recent history,
                           who is online, a send form
  GET ?with=W[&before=SEQ] the server's history with W (a name, #topic, or ALL for everything), newest first, a
                           page at a time, with a link to the older page
  POST action=register     name                 -> REGISTER; the token goes into an HttpOnly, SameSite=Strict cookie
  POST action=login        name, token          -> LOGIN (resume a user registered anywhere)
  POST action=password-login  name, password    -> LOGIN with the PASSWORD flag: this browser becomes a new device of
                                                   the user; that device's token goes into the cookie
  POST action=set-password password, current    -> REQUEST PASSWORD (current: needed to change an existing one)
  POST action=send         to, text             -> SEND to a name, ALL or #topic, with a receipt
  POST action=rename       name                 -> REQUEST RENAME
  POST action=logout                            -> forget the cookie

Configuration (environment, e.g. lighttpd's setenv.add-environment): SWITCHBOARD_HOST, SWITCHBOARD_PORT,
SB_CGI_STATE_DIR (where each user's recent history is kept; default a folder in the temp directory).
"""
import html
import json
import os
import sys
import tempfile
import time
from http.cookies import CookieError, SimpleCookie
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from switchboard_client import Client, Message, Receipt, SwitchboardError  # noqa: E402
from switchboard_client.frames import RECEIPT_STATUS, Kind, MsgFlag  # noqa: E402

COOKIE = "sb_session"
HISTORY = 50
PAGE = 20  # messages per page of the server's history
MAX_BODY = 64 * 1024


def server() -> Tuple[str, int]:
    return os.environ.get("SWITCHBOARD_HOST", "127.0.0.1"), int(os.environ.get("SWITCHBOARD_PORT", "7070"))


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def script_url() -> str:
    return os.environ.get("SCRIPT_NAME", "") or "/"


def absolute_url(query: str = "") -> str:
    scheme = "https" if os.environ.get("HTTPS", "").lower() in ("on", "1") else "http"
    host = os.environ.get("HTTP_HOST") or "%s:%s" % (os.environ.get("SERVER_NAME", "localhost"),
                                                      os.environ.get("SERVER_PORT", "80"))
    return "%s://%s%s%s" % (scheme, host, script_url(), "?" + query if query else "")


# ---------------------------------------------------------------- responses

def respond(status: str, body: str, headers: Optional[List[Tuple[str, str]]] = None) -> None:
    out = sys.stdout.buffer
    lines = ["Status: " + status, "Content-Type: text/html; charset=utf-8", "Cache-Control: no-store",
             "X-Content-Type-Options: nosniff", "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"]
    lines += ["%s: %s" % h for h in headers or []]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
    out.write(body.encode("utf-8"))
    out.flush()


def redirect(query: str = "", cookie: Optional[str] = None) -> None:
    headers = [("Location", absolute_url(query))]
    if cookie is not None:
        headers.append(("Set-Cookie", cookie))
    respond("303 See Other", "<p><a href=\"%s\">continue</a></p>" % esc(absolute_url(query)), headers)


def session_cookie(value: str, max_age: int) -> str:
    path = os.path.dirname(script_url()) or "/"
    secure = "; Secure" if os.environ.get("HTTPS", "").lower() in ("on", "1") else ""
    return "%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Strict%s" % (COOKIE, value, path, max_age, secure)


def page(title: str, content: str) -> str:
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%s · Switchboard</title>
<style>body{font-family:sans-serif;max-width:46em;margin:1em auto;padding:0 1em}
.msg{border-bottom:1px solid #ddd;padding:.25em 0}.new{background:#ffc}.meta{color:#666;font-size:.85em}
.error{color:#a00}.note{color:#060}form{margin:.5em 0}</style></head>
<body><h1>Switchboard</h1>%s</body></html>
""" % (esc(title), content)


# ---------------------------------------------------------------- state

def read_form() -> Dict[str, str]:
    try:
        n = min(int(os.environ.get("CONTENT_LENGTH") or "0"), MAX_BODY)
    except ValueError:
        n = 0
    raw = sys.stdin.buffer.read(n).decode("utf-8", errors="replace") if n > 0 else ""
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def read_session() -> Optional[Tuple[int, str]]:
    try:
        c = SimpleCookie(os.environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return None
    m = c.get(COOKIE)
    if m is None or ":" not in m.value:
        return None
    uid, _, token = m.value.partition(":")
    return (int(uid), token) if uid.isdigit() and token else None


def history_path(uid: int) -> str:
    d = os.environ.get("SB_CGI_STATE_DIR") or os.path.join(tempfile.gettempdir(), "switchboard-cgi-%d" % os.getuid())
    os.makedirs(d, mode=0o700, exist_ok=True)
    return os.path.join(d, "user-%d.jsonl" % uid)


def load_history(uid: int) -> List[Dict[str, object]]:
    try:
        with open(history_path(uid), encoding="utf-8") as f:
            return [json.loads(line) for line in f.readlines()[-HISTORY:]]
    except (OSError, ValueError):
        return []


def save_history(uid: int, entries: List[Dict[str, object]]) -> None:
    if not entries:
        return
    fd = os.open(history_path(uid), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")


def entry(m: Message) -> Dict[str, object]:
    if m.kind == Kind.RECEIPT:  # a receipt that waited for us: its body is the receipt as JSON
        try:
            r = json.loads(m.text)
            return {"ts": m.ts, "receipt": True, "text": "your message %s to %s: %s %s" % (
                r.get("msgId"), r.get("recipientName"), r.get("status"), RECEIPT_STATUS.get(r.get("status", 0), ""))}
        except ValueError:
            pass
    where = "#" + m.topic if m.topic else ("room" if m.to == 0xFFFFFFFF else "private")
    return {"ts": m.ts, "from": m.fromName, "where": where, "text": m.text}


def receipt_entry(r: Receipt) -> Dict[str, object]:
    return {"ts": r.at, "receipt": True, "text": "your message %d to %s: %d %s" % (
        r.msg_id, r.recipient_name, r.status, RECEIPT_STATUS.get(r.status, ""))}


def finish(c: Client, uid: int) -> List[Dict[str, object]]:
    """BYE, then keep the receipts that were pushed live while we were connected (a poll session gets them as
    RECEIPT frames, not in its queue); bye() waits for the server to close, so none is lost in between."""
    c.bye()
    got: List[Dict[str, object]] = []
    while True:
        ev = c.next_event(timeout=0)
        if ev is None:
            break
        if isinstance(ev, Receipt):
            got.append(receipt_entry(ev))
    save_history(uid, got)
    return got


def connect(sess: Tuple[int, str]) -> Client:
    c = Client(*server(), timeout=10.0)
    try:
        c.login(sess[1], user_id=sess[0], poll=True)
    except Exception:
        c.close()
        raise
    return c


# ---------------------------------------------------------------- pages

def login_page(error: str = "", status: str = "200 OK") -> None:
    err = '<p class="error">%s</p>' % esc(error) if error else ""
    respond(status, page("Log in", """%s
<h2>New here? Pick a name</h2>
<form method="post"><input type="hidden" name="action" value="register">
<label>Name <input name="name" required maxlength="25" autofocus></label> <button>Register</button></form>
<h2>Come back with your token</h2>
<form method="post"><input type="hidden" name="action" value="login">
<label>Name <input name="name" required></label> <label>Token <input name="token" required></label>
<button>Log in</button></form>
<h2>Or with your password</h2>
<form method="post"><input type="hidden" name="action" value="password-login">
<label>Name <input name="name" required></label>
<label>Password <input name="password" type="password" required></label>
<button>Log in</button></form>""" % err))


def inbox(sess: Tuple[int, str], note: str = "") -> None:
    try:
        c = connect(sess)
    except SwitchboardError as e:
        if e.name == "SB_ERR_AUTH":
            respond("200 OK", page("Log in", '<p class="error">Your session is no longer valid; please log in again.</p>'),
                    [("Set-Cookie", session_cookie("", 0))])
            return
        raise
    try:
        me = c.whoami()
        new = [entry(m) for m in c.take(100)]
        online = c.who()
    finally:
        save_history(sess[0], new)
        new += finish(c, sess[0])
    old = load_history(sess[0])[:-len(new)] if new else load_history(sess[0])

    def row(e: Dict[str, object], fresh: bool) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(str(e.get("ts", 0))) / 1000))
        cls = "msg new" if fresh else "msg"
        if e.get("receipt"):
            return '<div class="%s"><span class="meta">%s receipt</span> %s</div>' % (cls, esc(when), esc(e["text"]))
        return '<div class="%s"><span class="meta">%s [%s]</span> <b>%s</b>: %s</div>' % (
            cls, esc(when), esc(e.get("where", "")), esc(e.get("from", "")), esc(e.get("text", "")))

    msgs = "".join(row(e, True) for e in reversed(new)) + "".join(row(e, False) for e in reversed(old))
    who = "".join("<li>%s <span class=\"meta\">(%s)</span></li>" % (esc(u.name), esc(u.protocol)) for u in online)
    respond("200 OK", page("Inbox", """<p>You are <b>%s</b> (id %d). %s</p>
<form method="post"><input type="hidden" name="action" value="send">
<label>To <input name="to" required placeholder="name, ALL or #topic" value="ALL"></label>
<label>Message <input name="text" required size="40"></label> <button>Send</button></form>
<p><a href="%s">Check for new messages</a></p>
<h2>Inbox (%d new)</h2>%s
<h2>Online now (%d)</h2><ul>%s</ul>
<form method="get"><label>History with <input name="with" required placeholder="name, #topic or ALL"></label>
<button>Show</button></form>
<form method="post"><input type="hidden" name="action" value="rename">
<label>New name <input name="name" required maxlength="25"></label> <button>Rename</button></form>
<form method="post"><input type="hidden" name="action" value="set-password">
<label>New password <input name="password" type="password" required minlength="8"></label>
<label>Current password (if you have one) <input name="current" type="password"></label>
<button>Set password</button></form>
<form method="post"><input type="hidden" name="action" value="logout"><button>Log out</button></form>""" % (
        esc(me.name), me.id, '<span class="note">%s</span>' % esc(note) if note else "", esc(script_url()),
        len(new), msgs or "<p>No messages yet.</p>", len(online), who)))


def history_page(sess: Tuple[int, str], with_: str, before: int) -> None:
    """A page of the server's history (HISTORY), newest first: every device reads the same log, so this shows
    what was said before this browser logged in, and both sides (what you sent is a copy flagged SENT)."""
    c = connect(sess)
    try:
        got = c.history(with_, before=before, limit=PAGE)
    finally:
        finish(c, sess[0])
    is_user = with_ != "ALL" and not with_.startswith("#") and not with_.isdigit()

    def row(m: Message) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.ts / 1000))
        if m.flags & MsgFlag.SENT:  # a copy of what you sent; ``to`` is its recipient, known here by id only
            if m.topic:
                who = "you → #" + m.topic
            elif m.to == 0xFFFFFFFF:
                who = "you → ALL"
            else:
                who = "you → " + (with_ if is_user else "user %d" % m.to)
        else:
            who = m.fromName
        return '<div class="msg"><span class="meta">%s #%d</span> <b>%s</b>: %s</div>' % (
            esc(when), m.seq, esc(who), esc(m.text))

    older = ""
    if got.more and got.messages:
        older = '<p><a href="%s?with=%s&amp;before=%d">Older messages</a></p>' % (
            esc(script_url()), esc(quote(with_)), got.messages[-1].seq)
    respond("200 OK", page("History", """<p><a href="%s">Back to your inbox</a></p>
<h2>History with %s</h2>%s%s""" % (esc(script_url()), esc(with_),
                                   "".join(row(m) for m in got.messages) or "<p>No messages.</p>", older)))


def main() -> None:
    method = os.environ.get("REQUEST_METHOD", "GET").upper()
    sess = read_session()
    query = {k: v[0] for k, v in parse_qs(os.environ.get("QUERY_STRING", "")).items()}
    if method == "GET" or method == "HEAD":
        if sess is None:
            login_page()
        elif query.get("with", "").strip():
            before = query.get("before", "0")
            try:
                history_page(sess, query["with"].strip(), int(before) if before.isdigit() else 0)
            except SwitchboardError as e:
                redirect("note=" + quote("error: %s" % e))
        else:
            inbox(sess, query.get("note", ""))
        return
    if method != "POST":
        respond("405 Method Not Allowed", page("Error", "<p>GET or POST only.</p>"), [("Allow", "GET, POST")])
        return
    form = read_form()
    action = form.get("action", "")
    try:
        if action == "register":
            with Client(*server()) as c:
                w = c.register(form.get("name", "").strip(), poll=True)
                c.bye()
            # The token is shown once, in this page and never in a URL (URLs end up in logs and histories).
            respond("200 OK", page("Registered", """<p>Welcome, <b>%s</b> (id %d)!</p>
<p>Your token, to come back from another browser or client: <code>%s</code></p>
<p><a href="%s">Go to your inbox</a></p>""" % (esc(w.name), w.id, esc(w.token), esc(script_url()))),
                    [("Set-Cookie", session_cookie("%d:%s" % (w.id, w.token), 30 * 24 * 3600))])
        elif action == "login":
            with Client(*server()) as c:
                w = c.login(form.get("token", "").strip(), name=form.get("name", "").strip(), poll=True)
                c.bye()
            redirect("", session_cookie("%d:%s" % (w.id, form.get("token", "").strip()), 30 * 24 * 3600))
        elif action == "password-login":
            with Client(*server()) as c:
                w = c.login_password(form.get("name", "").strip(), form.get("password", ""), poll=True)
                c.bye()
            # This browser is a new device: the cookie holds that device's token (never shown, never in a URL).
            redirect("", session_cookie("%d:%s" % (w.id, w.token), 30 * 24 * 3600))
        elif action == "logout":
            redirect("", session_cookie("", 0))
        elif sess is None:
            login_page("Please log in first.", "401 Unauthorized")
        elif action == "send":
            c = connect(sess)
            try:
                acc = c.send(form.get("to", "").strip(), form.get("text", ""), receipt=True)
            finally:
                finish(c, sess[0])
            redirect("note=" + quote("sent to %s: %s" % (form.get("to", "").strip(), acc.status)))
        elif action == "set-password":
            c = connect(sess)
            try:
                c.set_password(form.get("password", ""), form.get("current", "") or None)
            finally:
                finish(c, sess[0])
            redirect("note=" + quote("your password is set"))
        elif action == "rename":
            c = connect(sess)
            try:
                name = c.rename(form.get("name", "").strip())
            finally:
                finish(c, sess[0])
            redirect("note=" + quote("you are now %s" % name))
        else:
            respond("400 Bad Request", page("Error", "<p>Unknown action.</p>"))
    except SwitchboardError as e:
        if sess is None:
            login_page(str(e), "400 Bad Request")
        else:
            redirect("note=" + quote("error: %s" % e))


if __name__ == "__main__":
    try:
        main()
    except (OSError, TimeoutError) as e:
        respond("502 Bad Gateway", page("Error", "<p class=\"error\">Switchboard is not reachable: %s</p>" % esc(e)))
