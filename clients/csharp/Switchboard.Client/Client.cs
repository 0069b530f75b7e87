// A blocking, thread-safe client over TCP. One reader thread decodes frames: a reply (the corr of a pending
// request) wakes its caller; everything else (DELIVER, RECEIPT, NOTICE, CLOSING...) is queued as an Event.
// Pushed messages and queued receipts are acknowledged as they arrive (AutoAck).
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace Switchboard.Client
{
    public static class Op
    {
        public const byte Whoami = 1, Who = 2, Rename = 3, End = 4, DeleteAccount = 5, Stats = 6, Subscribe = 7,
            Unsubscribe = 8, Topics = 9, Subscriptions = 10, Block = 11, Unblock = 12, Blocked = 13, Presence = 14,
            LastSeen = 15, Devices = 16, Revoke = 17, Password = 18;
    }

    /// <summary>The server answered ERROR.</summary>
    public sealed class ServerError : Exception
    {
        public readonly ulong Code;
        public readonly string Name, Limit;

        public ServerError(ulong code, string message, string limit)
            : base(Frames.ErrorName(code) + ": " + message + (limit.Length > 0 ? " (limit " + limit + ")" : ""))
        {
            Code = code; Name = Frames.ErrorName(code); Limit = limit;
        }
    }

    public sealed class Welcome
    {
        public uint Id;
        // Token: after Register, or a password login (the new device's): keep it. Empty after a token Login.
        public string Name = "", Token = "", Server = "";
        public uint HeartbeatMs;
    }

    public sealed class Accepted
    {
        public ulong MsgId, Seq;
        public string Status = ""; // delivered, queued, stored, scheduled, duplicate
        public uint Recipients;
    }

    public sealed class Receipt
    {
        public ulong MsgId, Seq, At;
        public int Status; // 200 delivered, 202 stored, 300 not yet, 210 read, 404, 410, 507
        public uint Recipient;
        public string RecipientName = "", Topic = "";
    }

    /// <summary>A page of history, newest first. More: older messages remain (ask again with before = the last
    /// seq).</summary>
    public sealed class HistoryPage
    {
        public List<Message> Messages = new List<Message>();
        public bool More;
    }

    /// <summary>One of the user's devices (from REQUEST DEVICES; never its token).</summary>
    public sealed class Device
    {
        public ulong Id, CreatedAt, LastSeen;
        public string Label = "";
        public bool Online, Current;
    }

    public enum EventKind { Message, Receipt, Frame, Closed }

    /// <summary>An unsolicited event: a message, a receipt, or another frame (NOTICE, RENAMED, CLOSING...).</summary>
    public sealed class Event
    {
        public EventKind Kind;
        public Message Message;
        public Receipt Receipt;
        public Frame Frame;
    }

    public sealed class SwitchboardClient : IDisposable
    {
        readonly TcpClient tcp;
        readonly NetworkStream stream;
        readonly TimeSpan timeout;
        readonly object gate = new object();
        readonly object writeGate = new object();
        readonly object beatGate = new object();
        readonly Dictionary<uint, Frame> pending = new Dictionary<uint, Frame>();
        readonly Queue<Event> events = new Queue<Event>();
        readonly Thread reader;
        Thread heartbeat;
        uint corr;
        ulong msgIds;
        volatile bool closed;
        string closeReason = "";

        public bool AutoAck = true;
        public bool Closed { get { return closed; } }
        public string CloseReason { get { lock (gate) return closeReason; } }

        public SwitchboardClient(string host, int port, int timeoutMs = 10000)
        {
            timeout = TimeSpan.FromMilliseconds(timeoutMs);
            tcp = new TcpClient();
            tcp.NoDelay = true;
            tcp.Connect(host, port);
            stream = tcp.GetStream();
            // msgIds unique across restarts too (as the TypeScript SDK does): receipts name messages by msgId, and
            // receipts for an earlier run's messages may still be waiting for this user.
            msgIds = (ulong)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds * 1024
                     + (ulong)new Random().Next(1024);
            reader = new Thread(ReadLoop) { IsBackground = true, Name = "switchboard-reader" };
            reader.Start();
        }

        // ---------------------------------------------------------------- session

        public Welcome Register(string name, bool poll = false)
        {
            return Welcomed(Call(new Frame("REGISTER").Set("version", (ulong)Frames.ProtocolVersion)
                .Set("flags", poll ? 1UL : 0UL).Set("name", name)));
        }

        /// <summary>Resume by id (or by name when id is 0) with the token from registration.</summary>
        public Welcome Login(string token, uint id, string name = "", bool poll = false)
        {
            return Welcomed(Call(new Frame("LOGIN").Set("version", (ulong)Frames.ProtocolVersion)
                .Set("flags", poll ? 1UL : 0UL).Set("id", (ulong)id).Set("name", name).Set("token", token)));
        }

        /// <summary>Log in by name and password as a new device; the Welcome's Token is that device's: keep it for
        /// Login (each password login makes another device).</summary>
        public Welcome LoginPassword(string name, string password, bool poll = false, bool sendOnly = false)
        {
            ulong flags = SessionFlag.Password | (poll ? SessionFlag.Poll : 0u) | (sendOnly ? SessionFlag.SendOnly : 0u);
            return Welcomed(Call(new Frame("LOGIN").Set("version", (ulong)Frames.ProtocolVersion)
                .Set("flags", flags).Set("id", 0UL).Set("name", name).Set("token", password)));
        }

        Welcome Welcomed(Frame f)
        {
            var w = new Welcome
            {
                Id = (uint)f.Num("id"), Name = f.Str("name"), Token = f.Str("token"),
                HeartbeatMs = (uint)f.Num("heartbeatMs"), Server = f.Str("server"),
            };
            if (w.HeartbeatMs > 0 && heartbeat == null)
            {
                heartbeat = new Thread(() => Beat((int)w.HeartbeatMs)) { IsBackground = true };
                heartbeat.Start();
            }
            return w;
        }

        void Beat(int ms)
        {
            while (!closed)
            {
                lock (beatGate) if (!closed) Monitor.Wait(beatGate, ms); // woken early by Close
                if (closed) return;
                try { Write(new Frame("PING")); } // answered by PONG corr 0, which Dispatch drops
                catch (Exception) { return; }
            }
        }

        // ---------------------------------------------------------------- messages

        public Accepted Send(Address to, string text, bool receipt = false, ulong msgId = 0)
        {
            if (msgId == 0) lock (gate) msgId = ++msgIds;
            var r = Call(new Frame("SEND").Set("msgId", msgId).Set("to", to).Set("kind", (ulong)MessageKind.Text)
                .Set("flags", receipt ? 1UL : 0UL).Set("ttlMs", 0UL).Set("notBefore", 0UL)
                .Set("body", Encoding.UTF8.GetBytes(text)));
            return new Accepted
            {
                MsgId = r.Num("msgId"), Status = Frames.SendStatusName(r.Num("status")), Seq = r.Num("seq"),
                Recipients = (uint)r.Num("recipients"),
            };
        }


        public void Ack(ulong seq) { Write(new Frame("ACK").Set("seq", seq)); }

        /// <summary>Poll (poll-mode sessions): the oldest queued messages, acknowledged unless peek.</summary>
        public List<Message> Take(int max = 100, bool peek = false, int waitMs = 0)
        {
            return Call(new Frame("TAKE").Set("max", (ulong)max).Set("mode", peek ? 1UL : 0UL).Set("waitMs", (ulong)waitMs),
                waitMs).Get<List<Message>>("msgs");
        }

        /// <summary>A page of this user's history, newest first: with a user or a topic, or everything
        /// (Address.All()). before: only seqs below it (0 = from the newest).</summary>
        public HistoryPage History(Address with, ulong before = 0, int limit = 50)
        {
            var r = Call(new Frame("HISTORY").Set("with", with).Set("before", before).Set("limit", (ulong)limit));
            return new HistoryPage { Messages = r.Get<List<Message>>("msgs"), More = r.Num("more") != 0 };
        }

        public List<Device> Devices()
        {
            var list = new List<Device>();
            foreach (var o in (List<object>)Json.Parse(Request(Op.Devices).Str("text")))
            {
                var d = (Dictionary<string, object>)o;
                object v;
                list.Add(new Device
                {
                    Id = (ulong)d["id"],
                    Label = d.TryGetValue("label", out v) && v is string ? (string)v : "",
                    CreatedAt = d.TryGetValue("createdAt", out v) && v is ulong ? (ulong)v : 0,
                    LastSeen = d.TryGetValue("lastSeen", out v) && v is ulong ? (ulong)v : 0,
                    Online = d.TryGetValue("online", out v) && v is bool && (bool)v,
                    Current = d.TryGetValue("current", out v) && v is bool && (bool)v,
                });
            }
            return list;
        }

        /// <summary>Revoke a device: its token stops working and its sessions end.</summary>
        public void Revoke(ulong deviceId) { Request(Op.Revoke, deviceId.ToString()); }

        /// <summary>Set a password (null clears it); changing or clearing one needs the current one.</summary>
        public void SetPassword(string password, string current = null)
        {
            var arg = "{\"password\":" + (password == null ? "null" : Json.Quote(password));
            if (current != null) arg += ",\"current\":" + Json.Quote(current);
            Request(Op.Password, arg + "}");
        }

        public Frame Request(byte op, string arg = "") { return Call(new Frame("REQUEST").Set("op", (ulong)op).Set("arg", arg)); }
        public List<User> Who() { return Request(Op.Who).Get<List<User>>("users"); }
        public User Whoami() { return Request(Op.Whoami).Get<List<User>>("users")[0]; }
        public string Rename(string newName) { return Request(Op.Rename, newName).Str("text"); }
        public void Subscribe(string topic) { Request(Op.Subscribe, topic); }
        public void Unsubscribe(string topic) { Request(Op.Unsubscribe, topic); }

        /// <summary>End the session (the user stays registered) and close.</summary>
        public void Bye()
        {
            if (!closed)
            {
                try
                {
                    Write(new Frame("BYE"));
                    // Let the server read everything (an ACK just before BYE included) and close first: closing a
                    // socket with unread input sends a reset, which may discard what the server has not read yet.
                    tcp.Client.Shutdown(SocketShutdown.Send);
                    reader.Join(2000);
                }
                catch (Exception) { }
            }
            Close();
        }

        /// <summary>The next event, or null on timeout. After the connection closes, an Event of kind Closed.</summary>
        public Event NextEvent(int timeoutMs)
        {
            var end = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            lock (gate)
            {
                while (events.Count == 0)
                {
                    var left = end - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) return null;
                    Monitor.Wait(gate, left);
                }
                var ev = events.Peek();
                if (ev.Kind != EventKind.Closed) events.Dequeue(); // Closed stays, for every later call
                return ev;
            }
        }

        public void Close()
        {
            closed = true;
            try { tcp.Client.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            tcp.Close();
            lock (gate) Monitor.PulseAll(gate);
            lock (beatGate) Monitor.PulseAll(beatGate);
        }

        public void Dispose() { Close(); }

        // ---------------------------------------------------------------- plumbing

        void Write(Frame f)
        {
            var b = Codec.Encode(f);
            lock (writeGate) stream.Write(b, 0, b.Length);
        }

        Frame Call(Frame f, int extraMs = 0)
        {
            if (closed) throw new IOException("connection closed: " + CloseReason);
            Frame answer;
            lock (gate)
            {
                if (++corr == 0) corr = 1; // 0 is for unsolicited frames
                f.Corr = corr;
                pending[f.Corr] = null;
            }
            try
            {
                Write(f);
                var end = DateTime.UtcNow + timeout + TimeSpan.FromMilliseconds(extraMs);
                lock (gate)
                {
                    while (pending[f.Corr] == null && !closed)
                    {
                        var left = end - DateTime.UtcNow;
                        if (left <= TimeSpan.Zero) throw new TimeoutException("no answer to " + f.Type + " in time");
                        Monitor.Wait(gate, left);
                    }
                    answer = pending[f.Corr];
                }
            }
            finally
            {
                lock (gate) pending.Remove(f.Corr);
            }
            if (answer == null) throw new IOException("connection closed: " + CloseReason);
            if (answer.Type == "ERROR") throw new ServerError(answer.Num("code"), answer.Str("message"), answer.Str("limit"));
            return answer;
        }

        void ReadLoop()
        {
            var fr = new FrameReader();
            var buf = new byte[65536];
            string reason = "connection closed";
            try
            {
                while (true)
                {
                    int n = stream.Read(buf, 0, buf.Length);
                    if (n <= 0) break;
                    bool bad = false;
                    foreach (var d in fr.Push(buf, 0, n))
                    {
                        if (d.Status == DecodeStatus.Ok) Dispatch(d.Frame);
                        else if (d.Status == DecodeStatus.Malformed) { reason = "malformed frame from the server: " + d.Detail; bad = true; }
                    }
                    if (bad) break;
                }
            }
            catch (Exception) { }
            lock (gate)
            {
                if (closeReason.Length == 0) closeReason = reason;
                closed = true;
                events.Enqueue(new Event { Kind = EventKind.Closed });
                Monitor.PulseAll(gate);
            }
        }

        void Dispatch(Frame f)
        {
            lock (gate)
            {
                if (f.Corr != 0 && pending.ContainsKey(f.Corr))
                {
                    pending[f.Corr] = f;
                    Monitor.PulseAll(gate);
                    return;
                }
            }
            if (f.Type == "PONG") return;
            var ev = new Event { Kind = EventKind.Frame, Frame = f };
            ulong toAck = 0;
            if (f.Type == "DELIVER")
            {
                ev.Kind = EventKind.Message;
                ev.Message = f.Get<Message>("msg");
                toAck = ev.Message.Seq;
            }
            else if (f.Type == "RECEIPT")
            {
                ev.Kind = EventKind.Receipt;
                ev.Receipt = new Receipt
                {
                    MsgId = f.Num("msgId"), Status = (int)f.Num("status"), Recipient = (uint)f.Num("recipient"),
                    RecipientName = f.Str("recipientName"), Seq = f.Num("seq"), At = f.Num("at"), Topic = f.Str("topic"),
                };
                toAck = f.Num("ackSeq");
            }
            else if (f.Type == "CLOSING")
            {
                lock (gate) closeReason = f.Str("reason") + ": " + f.Str("text");
            }
            // Acknowledge before the event is visible, so that a Bye() right after reading it cannot overtake the ACK.
            if (AutoAck && toAck != 0)
            {
                try { Ack(toAck); } catch (Exception) { }
            }
            lock (gate)
            {
                events.Enqueue(ev);
                Monitor.PulseAll(gate);
            }
        }
    }
}
