"""The codec against every golden vector in test/vectors/native (see test/vectors/README.md)."""
import json
import os
import unittest
from typing import Any, Dict, List

from switchboard_client.codec import (Address, Decoded, Frame, FrameReader, Item, Malformed, Message, NeedMore,
                                      TooLarge, User, decode, encode)
from switchboard_client.frames import DEFAULT_MAX_FRAME_BYTES, FRAMES, KIND_NAMES, Kind

VECTORS = os.environ.get("SB_VECTORS_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "test", "vectors", "native")


def load(name: str) -> List[Dict[str, Any]]:
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        data: List[Dict[str, Any]] = json.load(f)
    return data


def from_json(t: str, v: Any) -> Any:
    """A JSON field value (README conventions) as the codec's Python value."""
    if t == "bytes":
        return bytes.fromhex(v["$hex"])
    if t == "addr":
        k = v["kind"]
        if k == "user":
            return Address.user(v["id"])
        if k == "name":
            return Address.named(v["name"])
        if k == "topic":
            return Address.topic(v["topic"])
        return Address(k)
    if t == "msg":
        return Message(seq=v["seq"], msgId=v["msgId"], sender=v["from"], fromName=v["fromName"], to=v["to"],
                       topic=v["topic"], kind=v["kind"], flags=v["flags"], ts=v["ts"], expiresAt=v["expiresAt"],
                       fileId=v["fileId"], body=from_json("bytes", v["body"]))
    if t == "msgs":
        return [from_json("msg", m) for m in v]
    if t == "users":
        return [User(**u) for u in v]
    if t == "items":
        return [Item(**i) for i in v]
    return v


def frame_from_json(j: Dict[str, Any]) -> Frame:
    spec = FRAMES[j["type"]]
    names = {n for n, _ in spec[2]}
    extra = set(j) - names - {"type", "corr"}
    if extra:
        raise AssertionError("vector has fields the table does not know: %s" % extra)
    return Frame(j["type"], j["corr"], {n: from_json(t, j[n]) for n, t in spec[2]})


class SchemaVectors(unittest.TestCase):
    """The kind codes are declared once, in the server's src/schema/message.ts, and reach this client through
    test/vectors/native/schema.json (the msg layout there is checked byte for byte by the DELIVER vectors)."""

    def test_kind_codes_are_the_schema_codes(self) -> None:
        with open(os.path.join(VECTORS, "schema.json"), encoding="utf-8") as f:
            kinds = json.load(f)["kinds"]
        self.assertEqual({k.lower(): v for k, v in vars(Kind).items() if k.isupper()}, kinds)
        self.assertEqual({name: code for code, name in KIND_NAMES.items()}, kinds)


class FrameVectors(unittest.TestCase):
    vectors = load("frames.json")

    def test_there_are_vectors_for_every_frame(self) -> None:
        self.assertEqual({v["frame"]["type"] for v in self.vectors}, set(FRAMES))

    def test_parse(self) -> None:
        for v in self.vectors:
            with self.subTest(v["name"]):
                d = decode(bytes.fromhex(v["hex"]), DEFAULT_MAX_FRAME_BYTES)
                assert isinstance(d, Decoded), d
                self.assertEqual(d.size, len(v["hex"]) // 2)
                self.assertEqual(d.frame, frame_from_json(v["frame"]))

    def test_generate(self) -> None:
        for v in self.vectors:
            with self.subTest(v["name"]):
                self.assertEqual(encode(frame_from_json(v["frame"])).hex(), v["hex"])

    def test_mirror(self) -> None:
        for v in self.vectors:
            with self.subTest(v["name"]):
                f = frame_from_json(v["frame"])
                d = decode(encode(f), DEFAULT_MAX_FRAME_BYTES)
                assert isinstance(d, Decoded)
                self.assertEqual(d.frame, f)

    def test_every_split_and_byte_at_a_time(self) -> None:
        for v in self.vectors:
            raw = bytes.fromhex(v["hex"])
            want = frame_from_json(v["frame"])
            with self.subTest(v["name"]):
                for cut in range(len(raw) + 1):
                    r = FrameReader(DEFAULT_MAX_FRAME_BYTES)
                    got = r.push(raw[:cut]) + r.push(raw[cut:])
                    self.assertEqual([g.frame for g in got if isinstance(g, Decoded)], [want])
                r = FrameReader(DEFAULT_MAX_FRAME_BYTES)
                got = []
                for i in range(len(raw)):
                    got += r.push(raw[i:i + 1])
                self.assertEqual([g.frame for g in got if isinstance(g, Decoded)], [want])

    def test_all_frames_coalesced_in_one_chunk(self) -> None:
        raw = b"".join(bytes.fromhex(v["hex"]) for v in self.vectors)
        got = FrameReader(DEFAULT_MAX_FRAME_BYTES).push(raw)
        self.assertEqual([g.frame for g in got if isinstance(g, Decoded)],
                         [frame_from_json(v["frame"]) for v in self.vectors])


class InvalidVectors(unittest.TestCase):
    def test_outcomes(self) -> None:
        for v in load("invalid.json"):
            with self.subTest(v["name"]):
                d = decode(bytes.fromhex(v["hex"]), v.get("maxFrameBytes", DEFAULT_MAX_FRAME_BYTES))
                if v["outcome"] == "need-more":
                    self.assertIsInstance(d, NeedMore)
                elif v["outcome"] == "malformed":
                    assert isinstance(d, Malformed), d
                    self.assertEqual(d.corr, v["corr"])
                else:
                    assert isinstance(d, TooLarge), d
                    self.assertEqual(d.size, v["size"])
                    if "corr" in v:
                        self.assertEqual(d.corr, v["corr"])

    def test_encode_refuses_values_that_do_not_fit(self) -> None:
        with self.assertRaises(ValueError):
            encode(Frame("ACK", 1, {"seq": 2 ** 53}))
        with self.assertRaises(ValueError):
            encode(Frame("REQUEST", 1, {"op": 256, "arg": ""}))
        with self.assertRaises(ValueError):
            encode(Frame("REQUEST", 1, {"op": 1}))


if __name__ == "__main__":
    unittest.main()
