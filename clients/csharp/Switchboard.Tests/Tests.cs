// The C# client's tests, a self-contained runner (no test framework to install):
//   vectors: every frame of test/vectors/native/frames.json parsed, generated, mirrored, split at every byte;
//            every input of invalid.json (conventions: test/vectors/README.md)
//   live:    register, resume, receipts (200, 202), offline then poll, room, topic, rename, who, errors, against a
//            server on SB_PORT, or one this runner starts (node bin/switchboard.js, from SB_REPO_ROOT)
// Usage: mono Switchboard.Tests.exe [vectors|live|all]; exit 0 when everything passed. SB_VECTORS_DIR reads the
// vectors from another folder (as the Python tests do).
using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Switchboard.Client;

static class Tests
{
    static int failures, checks;

    static void Check(bool ok, string what)
    {
        checks++;
        if (!ok) { failures++; Console.Error.WriteLine("FAIL " + what); }
    }

    static string RepoRoot()
    {
        var env = Environment.GetEnvironmentVariable("SB_REPO_ROOT");
        if (!string.IsNullOrEmpty(env)) return env;
        var dir = AppDomain.CurrentDomain.BaseDirectory;
        while (dir != null && !File.Exists(Path.Combine(dir, "test", "vectors", "native", "frames.json")))
            dir = Path.GetDirectoryName(dir.TrimEnd('/'));
        if (dir == null) throw new Exception("cannot find the repository root; set SB_REPO_ROOT");
        return dir;
    }

    // ------------------------------------------------------------------ vectors

    static byte[] FromHex(string h)
    {
        var b = new byte[h.Length / 2];
        for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(h.Substring(2 * i, 2), 16);
        return b;
    }

    static string ToHex(byte[] b) { return string.Concat(b.Select(x => x.ToString("x2")).ToArray()); }

    static Dictionary<string, object> O(object v) { return (Dictionary<string, object>)v; }

    static Message MsgFrom(object j)
    {
        var v = O(j);
        return new Message
        {
            Seq = (ulong)v["seq"], MsgId = (ulong)v["msgId"], From = (uint)(ulong)v["from"], FromName = (string)v["fromName"],
            To = (uint)(ulong)v["to"], Topic = (string)v["topic"], Kind = (byte)(ulong)v["kind"], Flags = (byte)(ulong)v["flags"],
            Ts = (ulong)v["ts"], ExpiresAt = (ulong)v["expiresAt"], FileId = (string)v["fileId"],
            Body = FromHex((string)O(v["body"])["$hex"]),
        };
    }

    static object FieldFrom(FieldType t, object j)
    {
        switch (t)
        {
            case FieldType.Bytes: return FromHex((string)O(j)["$hex"]);
            case FieldType.Addr:
            {
                var v = O(j);
                switch ((string)v["kind"])
                {
                    case "user": return Address.User((uint)(ulong)v["id"]);
                    case "name": return Address.Named((string)v["name"]);
                    case "topic": return Address.Topic((string)v["topic"]);
                    case "all": return Address.All();
                    default: return Address.Server();
                }
            }
            case FieldType.Msg: return MsgFrom(j);
            case FieldType.Msgs: return ((List<object>)j).Select(MsgFrom).ToList();
            case FieldType.Users:
                return ((List<object>)j).Select(x => O(x)).Select(u => new User
                {
                    Id = (uint)(ulong)u["id"], Name = (string)u["name"], Protocol = (string)u["protocol"],
                    Since = (ulong)u["since"], LastSeen = (ulong)u["lastSeen"],
                }).ToList();
            case FieldType.Items:
                return ((List<object>)j).Select(x => O(x)).Select(i => new Item { Name = (string)i["name"], Count = (uint)(ulong)i["count"] }).ToList();
            default: return j; // ulong or string
        }
    }

    static Frame FrameFrom(object j)
    {
        var v = O(j);
        var spec = Frames.ByName((string)v["type"]);
        if (spec == null) throw new Exception("unknown frame type " + v["type"]);
        if (v.Count != spec.Fields.Length + 2) throw new Exception("vector has fields the table does not know: " + v["type"]);
        var f = new Frame(spec.Name, (uint)(ulong)v["corr"]);
        foreach (var fs in spec.Fields) f.Fields[fs.Key] = FieldFrom(fs.Value, v[fs.Key]);
        return f;
    }

    /// <summary>Deep equality over what frames hold: numbers, strings, byte arrays, lists and plain objects.</summary>
    static bool Same(object a, object b)
    {
        if (a == null || b == null) return a == b;
        if (a is string || a is ulong || a is Address) return a.Equals(b);
        if (a is byte[]) return b is byte[] && ((byte[])a).SequenceEqual((byte[])b);
        if (a is IList)
        {
            var la = (IList)a; var lb = b as IList;
            if (lb == null || la.Count != lb.Count) return false;
            for (int i = 0; i < la.Count; i++) if (!Same(la[i], lb[i])) return false;
            return true;
        }
        if (a.GetType() != b.GetType()) return false;
        foreach (var fi in a.GetType().GetFields())
            if (!fi.IsStatic && !Same(fi.GetValue(a), fi.GetValue(b))) return false;
        return true;
    }

    static bool SameFrame(Frame a, Frame b)
    {
        if (a == null || b == null || a.Type != b.Type || a.Corr != b.Corr || a.Fields.Count != b.Fields.Count) return false;
        foreach (var kv in a.Fields)
        {
            object other;
            if (!b.Fields.TryGetValue(kv.Key, out other) || !Same(kv.Value, other)) return false;
        }
        return true;
    }

    static void Vectors()
    {
        var dir = Environment.GetEnvironmentVariable("SB_VECTORS_DIR");
        if (string.IsNullOrEmpty(dir)) dir = Path.Combine(RepoRoot(), "test", "vectors", "native");
        var frames = (List<object>)Json.Parse(File.ReadAllText(Path.Combine(dir, "frames.json"), Encoding.UTF8));
        var seen = new HashSet<string>();
        var all = new List<byte>();
        var allFrames = new List<Frame>();
        foreach (var jv in frames)
        {
            var v = O(jv);
            string name = (string)v["name"], hex = (string)v["hex"];
            var want = FrameFrom(v["frame"]);
            seen.Add(want.Type);
            var raw = FromHex(hex);
            all.AddRange(raw);
            allFrames.Add(want);
            var d = Codec.Decode(raw);
            Check(d.Status == DecodeStatus.Ok && d.Size == (ulong)raw.Length && SameFrame(d.Frame, want), "parse " + name + " " + d.Detail);
            var enc = Codec.Encode(want);
            Check(ToHex(enc) == hex, "generate " + name + ": " + ToHex(enc));
            var back = Codec.Decode(enc);
            Check(back.Status == DecodeStatus.Ok && SameFrame(back.Frame, want), "mirror " + name);
            for (int cut = 0; cut <= raw.Length; cut++)
            {
                var r = new FrameReader();
                var got = r.Push(raw, 0, cut).Concat(r.Push(raw, cut, raw.Length - cut)).ToList();
                Check(got.Count == 1 && SameFrame(got[0].Frame, want), "split at " + cut + " " + name);
            }
            var r1 = new FrameReader();
            var one = new List<DecodeResult>();
            for (int i = 0; i < raw.Length; i++) one.AddRange(r1.Push(raw, i, 1));
            Check(one.Count == 1 && SameFrame(one[0].Frame, want), "byte at a time " + name);
        }
        Check(seen.Count == Frames.Table.Length, "vectors cover every frame type (" + seen.Count + ")");
        var coalesced = new FrameReader().Push(all.ToArray(), 0, all.Count);
        Check(coalesced.Count == allFrames.Count, "coalesced count");
        for (int i = 0; i < Math.Min(coalesced.Count, allFrames.Count); i++) Check(SameFrame(coalesced[i].Frame, allFrames[i]), "coalesced " + i);

        var invalid = (List<object>)Json.Parse(File.ReadAllText(Path.Combine(dir, "invalid.json"), Encoding.UTF8));
        foreach (var jv in invalid)
        {
            var v = O(jv);
            string name = (string)v["name"], outcome = (string)v["outcome"];
            ulong max = v.ContainsKey("maxFrameBytes") ? (ulong)v["maxFrameBytes"] : Frames.DefaultMaxFrameBytes;
            var d = Codec.Decode(FromHex((string)v["hex"]), max);
            if (outcome == "need-more") Check(d.Status == DecodeStatus.NeedMore, "invalid " + name + ": " + d.Status);
            else if (outcome == "malformed")
                Check(d.Status == DecodeStatus.Malformed && d.Corr == (ulong)v["corr"], "invalid " + name + ": " + d.Status);
            else
                Check(d.Status == DecodeStatus.TooLarge && d.Size == (ulong)v["size"] && (!v.ContainsKey("corr") || d.Corr == (ulong)v["corr"]),
                    "invalid " + name + ": " + d.Status);
        }
        bool threw = false;
        try { Codec.Encode(new Frame("ACK", 1).Set("seq", Frames.MaxU53 + 1)); }
        catch (ArgumentException) { threw = true; }
        Check(threw, "encode refuses a u53 of 2^53");
        // The kind codes come from the server's message schema, through schema.json.
        var kinds = O(O(Json.Parse(File.ReadAllText(Path.Combine(dir, "schema.json"), Encoding.UTF8)))["kinds"]);
        var names = Enum.GetNames(typeof(MessageKind));
        Check(kinds.Count == names.Length, "as many kinds as schema.json (" + kinds.Count + ")");
        foreach (var name in names)
        {
            object code;
            Check(kinds.TryGetValue(name.ToLowerInvariant(), out code) && (ulong)code == (ulong)(byte)Enum.Parse(typeof(MessageKind), name),
                "kind " + name + " has its schema.json code");
        }
        Console.WriteLine("vectors: " + frames.Count + " frames, " + invalid.Count + " invalid inputs");
    }

    // ------------------------------------------------------------------ live

    static Process server;
    static string dataDir;

    static int StartServer()
    {
        var p = Environment.GetEnvironmentVariable("SB_PORT");
        if (!string.IsNullOrEmpty(p)) return int.Parse(p);
        var root = RepoRoot();
        dataDir = Path.Combine(Path.GetTempPath(), "sb-cs-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        Directory.CreateDirectory(dataDir);
        var psi = new ProcessStartInfo("node", "\"" + Path.Combine(root, "bin", "switchboard.js") + "\" serve --port 0 --http-port -1 --data-dir \"" +
                                       dataDir + "\" --log-level warn --ack-timeout 1000")
        { UseShellExecute = false, RedirectStandardOutput = true, WorkingDirectory = root };
        server = Process.Start(psi);
        string line;
        while ((line = server.StandardOutput.ReadLine()) != null)
        {
            var m = Regex.Match(line, @"native\s+listening on [\d.]+:(\d+)");
            if (m.Success) return int.Parse(m.Groups[1].Value);
        }
        throw new Exception("the server did not start");
    }

    static void StopServer()
    {
        if (server == null) return;
        try { Process.Start("kill", "-TERM " + server.Id).WaitForExit(); server.WaitForExit(10000); } catch (Exception) { }
        try { Directory.Delete(dataDir, true); } catch (Exception) { }
    }

    static readonly Random Rng = new Random();
    static string Uniq(string p) { lock (Rng) return p + Rng.Next(100000000); }

    static Event WaitFor(SwitchboardClient c, Func<Event, bool> pred, int ms = 8000)
    {
        var end = DateTime.UtcNow.AddMilliseconds(ms);
        while (DateTime.UtcNow < end)
        {
            var ev = c.NextEvent(Math.Max(1, (int)(end - DateTime.UtcNow).TotalMilliseconds));
            if (ev == null || ev.Kind == EventKind.Closed) return null;
            if (pred(ev)) return ev;
        }
        return null;
    }

    static Func<Event, bool> ReceiptFor(ulong msgId, int status)
    {
        return e => e.Kind == EventKind.Receipt && e.Receipt.MsgId == msgId && e.Receipt.Status == status;
    }

    static string ErrorOf(Action a)
    {
        try { a(); return "no error"; }
        catch (ServerError e) { return e.Name; }
    }

    static void Live()
    {
        int port = StartServer();
        try
        {
            using (SwitchboardClient alice = new SwitchboardClient("127.0.0.1", port), bob = new SwitchboardClient("127.0.0.1", port))
            {
                var wa = alice.Register(Uniq("alice"));
                var wb = bob.Register(Uniq("bob"));
                Check(wa.Token.Length > 0 && wa.Id != wb.Id, "register");

                var acc = alice.Send(Address.Named(wb.Name), "héllo bob ✓", true);
                Check(acc.Status == "queued", "send to an online user: " + acc.Status);
                var m = WaitFor(bob, e => e.Kind == EventKind.Message);
                Check(m != null && m.Message.Text == "héllo bob ✓" && m.Message.FromName == wa.Name, "bob gets the message");
                Check(WaitFor(alice, ReceiptFor(acc.MsgId, 200)) != null, "alice gets 200");

                bob.Bye();
                var off = alice.Send(Address.Named(wb.Name), "while you were out", true);
                Check(off.Status == "stored", "send to an offline user: " + off.Status);
                Check(WaitFor(alice, ReceiptFor(off.MsgId, 202)) != null, "alice gets 202");

                using (var bob2 = new SwitchboardClient("127.0.0.1", port))
                {
                    var w2 = bob2.Login(wb.Token, wb.Id, "", true);
                    Check(w2.Id == wb.Id && w2.Name == wb.Name && w2.Token == "", "login by id");
                    var taken = new List<Message>();
                    for (int i = 0; i < 10 && taken.Count == 0; i++) taken = bob2.Take(10, false, 500);
                    Check(taken.Count == 1 && taken[0].Text == "while you were out", "bob takes the waiting message");
                    Check(WaitFor(alice, ReceiptFor(off.MsgId, 200)) != null, "alice gets 200 after the take");
                    Check(bob2.Take(10).Count == 0, "queue is empty after take");
                }

                using (var carol = new SwitchboardClient("127.0.0.1", port))
                {
                    var wc = carol.Register(Uniq("carol"));
                    Check(alice.Who().Any(u => u.Name == wc.Name), "who lists carol");
                    alice.Send(Address.All(), "hi room");
                    var room = WaitFor(carol, e => e.Kind == EventKind.Message && e.Message.Text == "hi room");
                    Check(room != null && room.Message.Seq == 0 && room.Message.To == Frames.AllId, "room message");
                    var topic = Uniq("news");
                    carol.Subscribe(topic);
                    Check(alice.Send(Address.Topic(topic), "extra").Recipients == 1, "topic has one subscriber");
                    var t = WaitFor(carol, e => e.Kind == EventKind.Message && e.Message.Topic == topic);
                    Check(t != null && t.Message.Text == "extra", "topic message");
                    var nn = Uniq("ren");
                    Check(alice.Rename(nn) == nn && alice.Whoami().Name == nn, "rename");
                    Check(WaitFor(carol, e => e.Kind == EventKind.Frame && e.Frame.Type == "RENAMED") != null, "carol sees the rename");
                    Check(ErrorOf(() => carol.Register("x")) == "SB_ERR_CONFLICT", "a second REGISTER is refused");
                    Check(ErrorOf(() => alice.Send(Address.Named(Uniq("nobody")), "x")) == "SB_ERR_UNKNOWN_RECIPIENT", "unknown recipient");
                    Check(ErrorOf(() => alice.Take()) == "SB_ERR_CONFLICT", "take in push mode");
                    using (var bad = new SwitchboardClient("127.0.0.1", port))
                        Check(ErrorOf(() => bad.Login("wrong", 0, wc.Name)) == "SB_ERR_AUTH", "wrong token");
                }
            }
        }
        finally
        {
            StopServer();
        }
        Console.WriteLine("live: done");
    }

    static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(false);
        var what = args.Length > 0 ? args[0] : "all";
        try
        {
            if (what == "vectors" || what == "all") Vectors();
            if (what == "live" || what == "all") Live();
        }
        catch (Exception e)
        {
            failures++;
            Console.Error.WriteLine("FAIL exception: " + e);
        }
        Console.WriteLine(checks + " checks, " + (failures == 0 ? "all passed" : failures + " failed"));
        return failures == 0 ? 0 : 1;
    }
}
