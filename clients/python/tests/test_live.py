"""The client against a live server: register, resume, send with receipts, poll, rename, who, errors."""
import os
import time
import unittest
import uuid
from typing import Any, List, Optional

from switchboard_client import Client, Message, Receipt, SwitchboardError
from switchboard_client.codec import Frame

from .server import Server

SERVER = Server()


def setUpModule() -> None:
    SERVER.start()


def tearDownModule() -> None:
    SERVER.stop()


def uniq(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


def wait_for(c: Client, pred: Any, timeout: float = 8.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = c.next_event(timeout=end - time.monotonic())
        if ev is not None and pred(ev):
            return ev
    raise AssertionError("event did not come")


class Live(unittest.TestCase):
    def connect(self) -> Client:
        c = Client(SERVER.host, SERVER.port)
        self.addCleanup(c.close)
        return c

    def test_register_send_receipt_resume_offline_and_poll(self) -> None:
        alice, bob = self.connect(), self.connect()
        wa = alice.register(uniq("alice"))
        wb = bob.register(uniq("bob"))
        self.assertTrue(wa.token)
        self.assertNotEqual(wa.id, wb.id)

        acc = alice.send(wb.name, "héllo bob ✓", receipt=True)
        self.assertEqual(acc.status, "queued")
        m = wait_for(bob, lambda e: isinstance(e, Message))
        self.assertEqual((m.fromName, m.text, m.sender), (wa.name, "héllo bob ✓", wa.id))
        r = wait_for(alice, lambda e: isinstance(e, Receipt) and e.msg_id == acc.msg_id and e.status == 200)
        self.assertEqual(r.recipient_name, wb.name)

        # bob goes away: a message waits for him, alice is told 202 at once
        bob.bye()
        acc2 = alice.send(wb.name, "while you were out", receipt=True)
        self.assertEqual(acc2.status, "stored")
        wait_for(alice, lambda e: isinstance(e, Receipt) and e.msg_id == acc2.msg_id and e.status == 202)

        # bob resumes by id with his token, in poll mode, and takes it
        bob2 = self.connect()
        w = bob2.login(wb.token, user_id=wb.id, poll=True)
        self.assertEqual((w.id, w.name, w.token), (wb.id, wb.name, ""))
        msgs: List[Message] = []
        end = time.monotonic() + 5
        while not msgs and time.monotonic() < end:
            msgs = bob2.take(10, wait_ms=500)
        self.assertEqual([x.text for x in msgs], ["while you were out"])
        wait_for(alice, lambda e: isinstance(e, Receipt) and e.msg_id == acc2.msg_id and e.status == 200)
        self.assertEqual(bob2.take(10), [])

    def test_room_topic_who_rename(self) -> None:
        a, b = self.connect(), self.connect()
        wa, wb = a.register(uniq("ra")), b.register(uniq("rb"))
        names = {u.name for u in a.who()}
        self.assertTrue({wa.name, wb.name} <= names)
        a.send("ALL", "hi room")
        m = wait_for(b, lambda e: isinstance(e, Message) and e.text == "hi room")
        self.assertEqual(m.seq, 0)
        topic = uniq("news")
        b.subscribe(topic)
        self.assertEqual(a.send("#" + topic, "extra!").recipients, 1)
        m = wait_for(b, lambda e: isinstance(e, Message) and e.topic == topic)
        self.assertEqual(m.text, "extra!")
        new = uniq("rn")
        self.assertEqual(a.rename(new), new)
        self.assertEqual(a.whoami().name, new)
        wait_for(b, lambda e: isinstance(e, Frame) and e.type == "RENAMED" and e["newName"] == new)

    def test_errors(self) -> None:
        a, b = self.connect(), self.connect()
        name = uniq("dup")
        a.register(name)
        with self.assertRaises(SwitchboardError) as cm:
            b.register(name)
        self.assertEqual(cm.exception.name, "SB_ERR_NAME_TAKEN")
        with self.assertRaises(SwitchboardError) as cm:
            b.login("wrong", name=name)
        self.assertEqual(cm.exception.name, "SB_ERR_AUTH")
        with self.assertRaises(SwitchboardError) as cm:
            a.send(uniq("nobody"), "x")
        self.assertEqual(cm.exception.name, "SB_ERR_UNKNOWN_RECIPIENT")
        with self.assertRaises(SwitchboardError) as cm:
            a.take()
        self.assertEqual(cm.exception.name, "SB_ERR_CONFLICT")

    def test_a_second_login_replaces_the_first(self) -> None:
        a = self.connect()
        w = a.register(uniq("twice"))
        b = self.connect()
        b.login(w.token, name=w.name)
        f: Optional[Frame] = wait_for(a, lambda e: isinstance(e, Frame) and e.type == "CLOSING")
        assert f is not None
        self.assertEqual(f["reason"], "replaced")


if __name__ == "__main__":
    unittest.main()
