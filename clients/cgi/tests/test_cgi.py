"""The CGI program behind a real lighttpd (mod_cgi) on a loopback port, against a real Switchboard server:
log-in form -> register -> cookie -> inbox shows a message another client sent -> send -> the other client gets
it -> receipt in the inbox -> rename -> log out; and a password set on the inbox page, a password login (this
browser a new device) and the server's history paged newest first."""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from typing import Dict, Optional, Tuple
from urllib.parse import urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
CGI = os.path.abspath(os.path.join(HERE, "..", "switchboard.cgi"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

from switchboard_client import Client, Message, Receipt  # noqa: E402

def _server_helper() -> type:
    # clients/python/tests/server.py, loaded by path: both folders call their test package "tests"
    import importlib.util
    spec = importlib.util.spec_from_file_location("sb_test_server", os.path.join(HERE, "..", "..", "python", "tests",
                                                                                  "server.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    server_class: type = mod.Server
    return server_class


Server = _server_helper()

LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


class Web:
    """lighttpd serving the CGI as /chat/switchboard.cgi."""

    def __init__(self, sb_port: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="sb-cgi-")
        www = os.path.join(self.dir, "www", "chat")
        os.makedirs(www)
        os.symlink(CGI, os.path.join(www, "switchboard.cgi"))
        self.port = free_port()
        conf = os.path.join(self.dir, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write("""server.modules = ("mod_cgi", "mod_setenv")
server.document-root = "%(www)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(dir)s/error.log"
server.follow-symlink = "enable"
mimetype.assign = (".html" => "text/html")
cgi.assign = (".cgi" => "%(python)s")
setenv.add-environment = ("SWITCHBOARD_HOST" => "127.0.0.1", "SWITCHBOARD_PORT" => "%(sb)d",
                          "SB_CGI_STATE_DIR" => "%(dir)s/state")
""" % {"www": os.path.join(self.dir, "www"), "port": self.port, "dir": self.dir, "python": sys.executable,
                "sb": sb_port})
        self.proc = subprocess.Popen([LIGHTTPD, "-D", "-f", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("lighttpd exited: %s" % self.proc.stderr.read().decode() if self.proc.stderr
                                       else "")
                time.sleep(0.05)
        raise RuntimeError("lighttpd did not start")

    def request(self, method: str, path: str, form: Optional[Dict[str, str]] = None,
                cookie: str = "") -> Tuple[int, Dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        headers = {"Cookie": cookie} if cookie else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read().decode("utf-8")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, hdrs, data

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


SERVER = Server()
WEB: Optional[Web] = None
PATH = "/chat/switchboard.cgi"


def setUpModule() -> None:
    global WEB
    SERVER.start()
    WEB = Web(SERVER.port)


def tearDownModule() -> None:
    if WEB is not None:
        WEB.stop()
    SERVER.stop()


def wait_for(c: Client, pred: object, timeout: float = 8.0) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = c.next_event(timeout=end - time.monotonic())
        if ev is not None and pred(ev):  # type: ignore[operator]
            return ev
    raise AssertionError("event did not come")


class CgiChat(unittest.TestCase):
    def test_login_inbox_send_receipt_rename_logout(self) -> None:
        assert WEB is not None
        web_name = "web" + uuid.uuid4().hex[:6]
        py_name = "py" + uuid.uuid4().hex[:6]

        status, _, body = WEB.request("GET", PATH)
        self.assertEqual(status, 200)
        self.assertIn('name="action" value="register"', body)

        status, hdrs, body = WEB.request("POST", PATH, {"action": "register", "name": web_name})
        self.assertEqual(status, 200, body)
        cookie_header = hdrs.get("set-cookie", "")
        self.assertIn("HttpOnly", cookie_header)
        self.assertIn("SameSite=Strict", cookie_header)
        self.assertIn("Path=/chat", cookie_header)
        m = re.match(r"sb_session=(\d+:[^;]+);", cookie_header)
        assert m is not None, cookie_header
        cookie = "sb_session=" + m.group(1)
        token = m.group(1).split(":", 1)[1]
        self.assertIn(token, body)  # shown once, to come back from elsewhere

        # another client sends to the web user while the web user is offline: stored, 202
        py = Client(SERVER.host, SERVER.port)
        self.addCleanup(py.close)
        py.register(py_name)
        acc = py.send(web_name, "hello web <b>", receipt=True)
        self.assertEqual(acc.status, "stored")
        wait_for(py, lambda e: isinstance(e, Receipt) and e.msg_id == acc.msg_id and e.status == 202)

        status, _, body = WEB.request("GET", PATH, cookie=cookie)
        self.assertEqual(status, 200)
        self.assertIn("hello web &lt;b&gt;", body)  # taken by polling, and escaped
        self.assertIn("<b>%s</b>" % py_name, body)
        self.assertIn("Inbox (1 new)", body)
        self.assertIn(py_name, body.split("Online now")[1])  # who is online
        # the take acknowledged it: the sender is told 200
        wait_for(py, lambda e: isinstance(e, Receipt) and e.msg_id == acc.msg_id and e.status == 200)

        # send from the web page to the Python client, which is online
        status, hdrs, _ = WEB.request("POST", PATH, {"action": "send", "to": py_name, "text": "hi from the wéb"},
                                      cookie=cookie)
        self.assertEqual(status, 303)
        loc = urlsplit(hdrs["location"])
        self.assertEqual(loc.path, PATH)
        got = wait_for(py, lambda e: isinstance(e, Message) and e.fromName == web_name)
        assert isinstance(got, Message)
        self.assertEqual(got.text, "hi from the wéb")

        # the receipt for that message waited in the web user's queue; the next page shows it, and the history
        # keeps the earlier message
        time.sleep(0.3)
        status, _, body = WEB.request("GET", PATH + "?" + loc.query, cookie=cookie)
        self.assertIn("sent to %s: queued" % py_name, body)
        self.assertIn("to %s: 200 delivered" % py_name, body)
        self.assertIn("hello web &lt;b&gt;", body)

        new = "w2" + uuid.uuid4().hex[:6]
        status, _, _ = WEB.request("POST", PATH, {"action": "rename", "name": new}, cookie=cookie)
        self.assertEqual(status, 303)
        status, _, body = WEB.request("GET", PATH, cookie=cookie)
        self.assertIn("You are <b>%s</b>" % new, body)

        # resume with name and token from a "new browser"
        status, hdrs, _ = WEB.request("POST", PATH, {"action": "login", "name": new, "token": token})
        self.assertEqual(status, 303)
        self.assertIn("sb_session=", hdrs.get("set-cookie", ""))
        status, _, body = WEB.request("POST", PATH, {"action": "login", "name": new, "token": "wrong"})
        self.assertEqual(status, 400)
        self.assertIn("SB_ERR_AUTH", body)

        status, hdrs, _ = WEB.request("POST", PATH, {"action": "logout"}, cookie=cookie)
        self.assertEqual(status, 303)
        self.assertIn("Max-Age=0", hdrs.get("set-cookie", ""))
        status, _, _ = WEB.request("POST", PATH, {"action": "send", "to": "ALL", "text": "x"})
        self.assertEqual(status, 401)

    def test_password_login_and_history(self) -> None:
        assert WEB is not None
        web_name = "hw" + uuid.uuid4().hex[:6]
        py_name = "hp" + uuid.uuid4().hex[:6]
        status, hdrs, _ = WEB.request("POST", PATH, {"action": "register", "name": web_name})
        self.assertEqual(status, 200)
        m = re.match(r"sb_session=(\d+:[^;]+);", hdrs.get("set-cookie", ""))
        assert m is not None
        first = "sb_session=" + m.group(1)

        status, _, body = WEB.request("GET", PATH, cookie=first)
        self.assertIn('value="set-password"', body)
        status, hdrs, _ = WEB.request("POST", PATH, {"action": "set-password", "password": "web pass 1"}, cookie=first)
        self.assertEqual(status, 303)
        self.assertIn("your password is set", urlsplit(hdrs["location"]).query.replace("%20", " "))

        # a conversation: the Python client and the web page take turns, 25 messages (more than one page of 20)
        py = Client(SERVER.host, SERVER.port)
        self.addCleanup(py.close)
        py.register(py_name)
        for i in range(25):
            if i % 2 == 0:
                py.send(web_name, "from py %d" % i)
            else:
                status, _, _ = WEB.request("POST", PATH, {"action": "send", "to": py_name, "text": "from web %d" % i},
                                           cookie=first)
                self.assertEqual(status, 303)

        # another browser logs in with the password: a new device, with its own token in the cookie
        status, _, body = WEB.request("GET", PATH)
        self.assertIn('value="password-login"', body)
        status, _, body = WEB.request("POST", PATH, {"action": "password-login", "name": web_name,
                                                     "password": "wrong password"})
        self.assertEqual(status, 400)
        self.assertIn("SB_ERR_AUTH", body)
        status, hdrs, _ = WEB.request("POST", PATH, {"action": "password-login", "name": web_name,
                                                     "password": "web pass 1"})
        self.assertEqual(status, 303)
        m = re.match(r"sb_session=(\d+:[^;]+);", hdrs.get("set-cookie", ""))
        assert m is not None
        second = "sb_session=" + m.group(1)
        self.assertNotEqual(second, first)
        self.assertEqual(second.split(":")[0], first.split(":")[0])  # the same user

        # the new device reads the past: newest first, 20 a page, both sides, then the older page
        status, _, body = WEB.request("GET", PATH + "?with=" + py_name, cookie=second)
        self.assertEqual(status, 200, body)
        texts = re.findall(r"<b>([^<]*)</b>: (from (?:py|web) \d+)</div>", body)
        self.assertEqual([t for _, t in texts], ["from %s %d" % ("py" if i % 2 == 0 else "web", i)
                                                 for i in range(24, 4, -1)])
        self.assertEqual(texts[0][0], py_name)
        self.assertEqual(texts[1][0], "you → " + py_name)  # a sent copy, from the first browser
        older = re.search(r'href="([^"]*before=\d+)"', body)
        assert older is not None, body
        status, _, body = WEB.request("GET", older.group(1).replace("&amp;", "&"), cookie=second)
        self.assertEqual(status, 200)
        texts = re.findall(r"<b>[^<]*</b>: (from (?:py|web) \d+)</div>", body)
        self.assertEqual(texts, ["from %s %d" % ("py" if i % 2 == 0 else "web", i) for i in range(4, -1, -1)])
        self.assertNotIn("before=", body)  # the oldest page: no link further back


if __name__ == "__main__":
    unittest.main()
