// Switchboard native protocol: the frame table and a pure codec (no I/O, no clock).
//
//   frame := u32 length | u8 type | u32 corr | fields...   (length counts everything after itself)
//
// Every integer is big-endian. The table mirrors src/protocols/native/frames.ts; one table drives both the
// encoder and the decoder. Decode never throws on untrusted bytes.
using System;
using System.Collections.Generic;
using System.Text;

namespace Switchboard.Client
{
    public enum FieldType { U8, U16, U32, U53, Str, Bytes, Addr, Msg, Msgs, Users, Items }

    /// <summary>Message kinds: the kind byte of a msg and of SEND. The codes are declared once, in the server's
    /// src/schema/message.ts; the tests check these against test/vectors/native/schema.json.</summary>
    public enum MessageKind : byte { Text = 0, File = 1, Receipt = 2, Notice = 3, Control = 4 }

    /// <summary>LOGIN / REGISTER flags.</summary>
    public static class SessionFlag
    {
        public const byte Poll = 1;
        /// <summary>LOGIN: id 0, name = the user, token = the password; WELCOME brings a new device's token.</summary>
        public const byte Password = 2;
        /// <summary>Attach beside the device's live session, for a one-shot command; nothing is delivered to it.</summary>
        public const byte SendOnly = 4;
    }

    /// <summary>Bits of a msg's flags byte beyond the sender's SEND flags (set by the server).</summary>
    public static class MsgFlag
    {
        /// <summary>A copy of what this user sent from another device; To is its recipient.</summary>
        public const byte Sent = 8;
    }

    public enum AddrKind : byte { User = 0, Name = 1, All = 2, Server = 3, Topic = 4 }

    public sealed class Address : IEquatable<Address>
    {
        public AddrKind Kind;
        public uint Id;       // User
        public string Name = ""; // Name, Topic

        public static Address User(uint id) { return new Address { Kind = AddrKind.User, Id = id }; }
        public static Address Named(string name) { return new Address { Kind = AddrKind.Name, Name = name }; }
        public static Address All() { return new Address { Kind = AddrKind.All }; }
        public static Address Server() { return new Address { Kind = AddrKind.Server }; }
        public static Address Topic(string topic) { return new Address { Kind = AddrKind.Topic, Name = topic }; }

        /// <summary>"ALL", "SERVER", "#topic", "42" (a user id) or a user name.</summary>
        public static Address Parse(string text)
        {
            if (text == "ALL") return All();
            if (text == "SERVER") return Server();
            if (text.Length > 1 && text[0] == '#') return Topic(text.Substring(1));
            uint id;
            if (text.Length > 0 && char.IsDigit(text[0]) && uint.TryParse(text, out id)) return User(id);
            return Named(text);
        }

        public bool Equals(Address o) { return o != null && Kind == o.Kind && Id == o.Id && Name == o.Name; }
        public override bool Equals(object o) { return Equals(o as Address); }
        public override int GetHashCode() { return (int)Kind ^ (int)Id ^ Name.GetHashCode(); }
        public override string ToString() { return Kind + ":" + (Kind == AddrKind.User ? Id.ToString() : Name); }
    }

    public sealed class Message
    {
        public ulong Seq, MsgId;
        public uint From;
        public string FromName = "";
        public uint To;
        public string Topic = "";
        public byte Kind, Flags;
        public ulong Ts, ExpiresAt;
        public string FileId = "";
        public byte[] Body = new byte[0];
        public string Text { get { return Encoding.UTF8.GetString(Body); } }
    }

    public sealed class User
    {
        public uint Id;
        public string Name = "", Protocol = "";
        public ulong Since, LastSeen;
    }

    public sealed class Item
    {
        public string Name = "";
        public uint Count;
    }

    /// <summary>One frame: its name ("SEND", "DELIVER"...), its correlation number and its fields by name.
    /// Integers of every width are ulong; str is string; bytes is byte[]; addr is Address; msg is Message;
    /// msgs/users/items are List&lt;Message&gt;/List&lt;User&gt;/List&lt;Item&gt;.</summary>
    public sealed class Frame
    {
        public string Type;
        public uint Corr;
        public readonly Dictionary<string, object> Fields = new Dictionary<string, object>();

        public Frame(string type, uint corr = 0) { Type = type; Corr = corr; }
        public Frame Set(string name, object value) { Fields[name] = value; return this; }
        public ulong Num(string name) { return (ulong)Fields[name]; }
        public string Str(string name) { return (string)Fields[name]; }
        public T Get<T>(string name) { return (T)Fields[name]; }
    }

    public sealed class FrameSpec
    {
        public readonly string Name;
        public readonly byte Code;
        public readonly bool ClientToServer;
        public readonly KeyValuePair<string, FieldType>[] Fields;

        public FrameSpec(string name, byte code, bool c2s, params object[] fields)
        {
            Name = name; Code = code; ClientToServer = c2s;
            Fields = new KeyValuePair<string, FieldType>[fields.Length / 2];
            for (int i = 0; i < Fields.Length; i++)
                Fields[i] = new KeyValuePair<string, FieldType>((string)fields[2 * i], (FieldType)fields[2 * i + 1]);
        }
    }

    public enum DecodeStatus { Ok, NeedMore, TooLarge, Malformed }

    public sealed class DecodeResult
    {
        public DecodeStatus Status = DecodeStatus.NeedMore;
        public Frame Frame;       // Ok
        public ulong Size;        // Ok: bytes consumed; TooLarge: bytes to skip (the whole frame)
        public uint Corr;         // TooLarge, Malformed: the corr when the header was readable
        public byte Type;         // TooLarge
        public string Detail = ""; // Malformed
    }

    public static class Frames
    {
        public const int HeaderBytes = 9;
        public const ushort ProtocolVersion = 1;
        public const ulong MaxU53 = (1UL << 53) - 1;
        public const ulong DefaultMaxFrameBytes = 1024 * 1024;
        public const uint AllId = 0xffffffff;

        const FieldType U8 = FieldType.U8, U16 = FieldType.U16, U32 = FieldType.U32, U53 = FieldType.U53,
            S = FieldType.Str, B = FieldType.Bytes, A = FieldType.Addr;

        public static readonly FrameSpec[] Table =
        {
            // client -> server
            new FrameSpec("REGISTER", 0x01, true, "version", U16, "flags", U8, "name", S),
            new FrameSpec("LOGIN", 0x02, true, "version", U16, "flags", U8, "id", U32, "name", S, "token", S),
            new FrameSpec("SEND", 0x03, true, "msgId", U53, "to", A, "kind", U8, "flags", U8, "ttlMs", U32, "notBefore", U53, "body", B),
            new FrameSpec("ACK", 0x04, true, "seq", U53),
            new FrameSpec("TAKE", 0x05, true, "max", U16, "mode", U8, "waitMs", U32),
            new FrameSpec("READ", 0x06, true, "seq", U53),
            new FrameSpec("PING", 0x07, true),
            new FrameSpec("REQUEST", 0x08, true, "op", U8, "arg", S),
            new FrameSpec("CONV", 0x09, true, "action", U8, "convId", S, "to", A, "body", B),
            new FrameSpec("FILE_BEGIN", 0x0a, true, "msgId", U53, "to", A, "flags", U8, "size", U53, "sha256", S, "name", S, "text", S),
            new FrameSpec("FILE_CHUNK", 0x0b, true, "uploadId", S, "data", B),
            new FrameSpec("FILE_END", 0x0c, true, "uploadId", S),
            new FrameSpec("FILE_ABORT", 0x0d, true, "uploadId", S),
            new FrameSpec("DOWNLOAD", 0x0e, true, "fileId", S, "offset", U53, "length", U53),
            new FrameSpec("BYE", 0x0f, true),
            new FrameSpec("HISTORY", 0x10, true, "with", A, "before", U53, "limit", U16),
            // server -> client
            new FrameSpec("ERROR", 0x40, false, "code", U16, "limit", S, "message", S),
            new FrameSpec("WELCOME", 0x41, false, "version", U16, "id", U32, "name", S, "token", S, "heartbeatMs", U32, "server", S),
            new FrameSpec("DELIVER", 0x42, false, "msg", FieldType.Msg),
            new FrameSpec("ACCEPTED", 0x43, false, "msgId", U53, "status", U8, "seq", U53, "recipients", U32, "fileId", S),
            new FrameSpec("RECEIPT", 0x44, false, "msgId", U53, "status", U16, "recipient", U32, "recipientName", S, "seq", U53, "at", U53, "topic", S, "ackSeq", U53),
            new FrameSpec("BATCH", 0x45, false, "msgs", FieldType.Msgs),
            new FrameSpec("NOTICE", 0x46, false, "code", S, "text", S),
            new FrameSpec("PONG", 0x47, false),
            new FrameSpec("RESULT", 0x48, false, "op", U8, "text", S, "users", FieldType.Users, "items", FieldType.Items),
            new FrameSpec("PRESENCE", 0x49, false, "id", U32, "name", S, "online", U8, "protocol", S, "at", U53),
            new FrameSpec("CONV_EVENT", 0x4a, false, "event", U8, "convId", S, "peerId", U32, "peerName", S, "expiresAt", U53, "reason", S, "body", B),
            new FrameSpec("RENAMED", 0x4b, false, "id", U32, "oldName", S, "newName", S),
            new FrameSpec("FILE_INFO", 0x4c, false, "fileId", S, "name", S, "size", U53, "sha256", S),
            new FrameSpec("FILE_DATA", 0x4d, false, "offset", U53, "last", U8, "data", B),
            new FrameSpec("READ_ELSEWHERE", 0x4e, false, "seq", U53, "at", U53),
            new FrameSpec("CLOSING", 0x4f, false, "reason", S, "text", S),
            new FrameSpec("HISTORY_PAGE", 0x50, false, "more", U8, "msgs", FieldType.Msgs),
        };

        public static FrameSpec ByName(string name)
        {
            foreach (var s in Table) if (s.Name == name) return s;
            return null;
        }

        public static FrameSpec ByCode(byte code)
        {
            foreach (var s in Table) if (s.Code == code) return s;
            return null;
        }

        static readonly string[] ErrorNames =
        {
            "SB_ERR_MALFORMED", "SB_ERR_TOO_LARGE", "SB_ERR_NAME_INVALID", "SB_ERR_NAME_TAKEN", "SB_ERR_AUTH",
            "SB_ERR_NOT_LOGGED_IN", "SB_ERR_UNKNOWN_RECIPIENT", "SB_ERR_UNKNOWN_MESSAGE", "SB_ERR_QUEUE_FULL",
            "SB_ERR_RATE_LIMITED", "SB_ERR_LIMIT", "SB_ERR_UNSUPPORTED", "SB_ERR_FORBIDDEN", "SB_ERR_CONFLICT",
            "SB_ERR_UNKNOWN_FILE", "SB_ERR_FILE_CHECK", "SB_ERR_UNKNOWN_CONVERSATION", "SB_ERR_SHUTTING_DOWN",
            "SB_ERR_INTERNAL", "SB_ERR_STORAGE_FULL", "SB_ERR_PASSWORD_INVALID", "SB_ERR_UNKNOWN_DEVICE",
            "SB_ERR_OFFLINE",
        };

        public static string ErrorName(ulong code)
        {
            return code >= 1 && code <= (ulong)ErrorNames.Length ? ErrorNames[code - 1] : "SB_ERR_" + code;
        }

        static readonly string[] SendStatus = { "delivered", "queued", "stored", "scheduled", "duplicate" };

        public static string SendStatusName(ulong s) { return s < (ulong)SendStatus.Length ? SendStatus[s] : s.ToString(); }

        public static string ReceiptStatusName(ulong s)
        {
            switch (s)
            {
                case 200: return "delivered";
                case 210: return "read";
                case 202: return "stored";
                case 300: return "not yet acknowledged";
                case 404: return "recipient deleted";
                case 410: return "expired";
                case 507: return "dropped (queue full)";
                default: return "";
            }
        }
    }

    public static class Codec
    {
        // Strict: throws on invalid UTF-8 (overlongs, surrogates, truncated sequences) instead of replacing it.
        static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        sealed class BadFrame : Exception { public BadFrame(string m) : base(m) { } }

        sealed class Reader
        {
            readonly byte[] b; public int Off; readonly int end;
            public Reader(byte[] buf, int start, int end) { b = buf; Off = start; this.end = end; }

            void Need(ulong n)
            {
                if ((ulong)Off + n > (ulong)end) throw new BadFrame("field runs past the end of the frame at byte " + Off);
            }

            public ulong Be(int n)
            {
                Need((ulong)n);
                ulong v = 0;
                for (int i = 0; i < n; i++) v = (v << 8) | b[Off + i];
                Off += n;
                return v;
            }

            public ulong U53()
            {
                ulong v = Be(8);
                if (v > Frames.MaxU53) throw new BadFrame("integer larger than 2^53-1");
                return v;
            }

            public string Str()
            {
                int n = (int)Be(2);
                Need((ulong)n);
                string s;
                try { s = Strict.GetString(b, Off, n); }
                catch (ArgumentException) { throw new BadFrame("string is not valid UTF-8"); }
                Off += n;
                return s;
            }

            public byte[] Bytes()
            {
                ulong n = Be(4);
                Need(n);
                var v = new byte[n];
                Buffer.BlockCopy(b, Off, v, 0, (int)n);
                Off += (int)n;
                return v;
            }

            public Address Addr()
            {
                var k = (byte)Be(1);
                switch (k)
                {
                    case 0: return Address.User((uint)Be(4));
                    case 1: return Address.Named(Str());
                    case 2: return Address.All();
                    case 3: return Address.Server();
                    case 4: return Address.Topic(Str());
                    default: throw new BadFrame("unknown address kind " + k);
                }
            }

            public Message Msg()
            {
                var m = new Message();
                m.Seq = U53(); m.MsgId = U53(); m.From = (uint)Be(4); m.FromName = Str(); m.To = (uint)Be(4);
                m.Topic = Str(); m.Kind = (byte)Be(1); m.Flags = (byte)Be(1); m.Ts = U53(); m.ExpiresAt = U53();
                m.FileId = Str(); m.Body = Bytes();
                return m;
            }

            public object Field(FieldType t)
            {
                switch (t)
                {
                    case FieldType.U8: return Be(1);
                    case FieldType.U16: return Be(2);
                    case FieldType.U32: return Be(4);
                    case FieldType.U53: return U53();
                    case FieldType.Str: return Str();
                    case FieldType.Bytes: return Bytes();
                    case FieldType.Addr: return Addr();
                    case FieldType.Msg: return Msg();
                    case FieldType.Msgs:
                    {
                        int n = (int)Be(2);
                        var l = new List<Message>();
                        for (int i = 0; i < n; i++) l.Add(Msg());
                        return l;
                    }
                    case FieldType.Users:
                    {
                        int n = (int)Be(2);
                        var l = new List<User>();
                        for (int i = 0; i < n; i++)
                            l.Add(new User { Id = (uint)Be(4), Name = Str(), Protocol = Str(), Since = U53(), LastSeen = U53() });
                        return l;
                    }
                    default:
                    {
                        int n = (int)Be(2);
                        var l = new List<Item>();
                        for (int i = 0; i < n; i++) l.Add(new Item { Name = Str(), Count = (uint)Be(4) });
                        return l;
                    }
                }
            }
        }

        static uint Be32(byte[] b, int at) { return ((uint)b[at] << 24) | ((uint)b[at + 1] << 16) | ((uint)b[at + 2] << 8) | b[at + 3]; }

        /// <summary>Decode the first frame of buf[offset..offset+count). maxFrameBytes bounds the whole frame.</summary>
        public static DecodeResult Decode(byte[] buf, int offset, int count, ulong maxFrameBytes = Frames.DefaultMaxFrameBytes)
        {
            var r = new DecodeResult();
            if (count < 4) return r;
            ulong length = Be32(buf, offset);
            ulong size = length + 4;
            if (length < Frames.HeaderBytes - 4)
            {
                r.Status = DecodeStatus.Malformed;
                r.Detail = "frame length " + length + " is shorter than its header";
                return r;
            }
            if (size > maxFrameBytes)
            {
                r.Status = DecodeStatus.TooLarge;
                r.Size = size;
                r.Type = count >= 5 ? buf[offset + 4] : (byte)0;
                r.Corr = count >= Frames.HeaderBytes ? Be32(buf, offset + 5) : 0;
                return r;
            }
            if ((ulong)count < size) return r;
            byte code = buf[offset + 4];
            r.Corr = Be32(buf, offset + 5);
            var spec = Frames.ByCode(code);
            if (spec == null)
            {
                r.Status = DecodeStatus.Malformed;
                r.Detail = "unknown frame type 0x" + code.ToString("x");
                return r;
            }
            var rd = new Reader(buf, offset + Frames.HeaderBytes, offset + (int)size);
            var f = new Frame(spec.Name, r.Corr);
            try
            {
                foreach (var fs in spec.Fields) f.Fields[fs.Key] = rd.Field(fs.Value);
            }
            catch (BadFrame e)
            {
                r.Status = DecodeStatus.Malformed;
                r.Detail = spec.Name + ": " + e.Message;
                return r;
            }
            if (rd.Off != offset + (int)size)
            {
                r.Status = DecodeStatus.Malformed;
                r.Detail = spec.Name + ": " + (offset + (int)size - rd.Off) + " bytes left over after the last field";
                return r;
            }
            r.Status = DecodeStatus.Ok;
            r.Frame = f;
            r.Size = size;
            return r;
        }

        public static DecodeResult Decode(byte[] buf, ulong maxFrameBytes = Frames.DefaultMaxFrameBytes)
        {
            return Decode(buf, 0, buf.Length, maxFrameBytes);
        }

        sealed class Writer
        {
            public readonly List<byte> Out = new List<byte>();

            void Be(ulong v, int n, ulong top, string what)
            {
                if (v > top) throw new ArgumentOutOfRangeException(what, v + " does not fit " + what);
                for (int i = n - 1; i >= 0; i--) Out.Add((byte)(v >> (8 * i)));
            }

            public void U8(ulong v) { Be(v, 1, 0xff, "u8"); }
            public void U16(ulong v) { Be(v, 2, 0xffff, "u16"); }
            public void U32(ulong v) { Be(v, 4, 0xffffffff, "u32"); }
            public void U53(ulong v) { Be(v, 8, Frames.MaxU53, "u53"); }
            public void Str(string s) { var b = Encoding.UTF8.GetBytes(s); U16((ulong)b.Length); Out.AddRange(b); }
            public void Bytes(byte[] b) { U32((ulong)b.Length); Out.AddRange(b); }

            public void Addr(Address a)
            {
                U8((ulong)a.Kind);
                if (a.Kind == AddrKind.User) U32(a.Id);
                else if (a.Kind == AddrKind.Name || a.Kind == AddrKind.Topic) Str(a.Name);
                else if (a.Kind != AddrKind.All && a.Kind != AddrKind.Server) throw new ArgumentException("unknown address kind");
            }

            public void Msg(Message m)
            {
                U53(m.Seq); U53(m.MsgId); U32(m.From); Str(m.FromName); U32(m.To); Str(m.Topic); U8(m.Kind);
                U8(m.Flags); U53(m.Ts); U53(m.ExpiresAt); Str(m.FileId); Bytes(m.Body);
            }

            public void Field(FieldType t, object v)
            {
                switch (t)
                {
                    case FieldType.U8: U8(Convert.ToUInt64(v)); break;
                    case FieldType.U16: U16(Convert.ToUInt64(v)); break;
                    case FieldType.U32: U32(Convert.ToUInt64(v)); break;
                    case FieldType.U53: U53(Convert.ToUInt64(v)); break;
                    case FieldType.Str: Str((string)v); break;
                    case FieldType.Bytes: Bytes((byte[])v); break;
                    case FieldType.Addr: Addr((Address)v); break;
                    case FieldType.Msg: Msg((Message)v); break;
                    case FieldType.Msgs:
                    {
                        var l = (List<Message>)v;
                        U16((ulong)l.Count);
                        foreach (var m in l) Msg(m);
                        break;
                    }
                    case FieldType.Users:
                    {
                        var l = (List<User>)v;
                        U16((ulong)l.Count);
                        foreach (var u in l) { U32(u.Id); Str(u.Name); Str(u.Protocol); U53(u.Since); U53(u.LastSeen); }
                        break;
                    }
                    case FieldType.Items:
                    {
                        var l = (List<Item>)v;
                        U16((ulong)l.Count);
                        foreach (var i in l) { Str(i.Name); U32(i.Count); }
                        break;
                    }
                }
            }
        }

        /// <summary>Encode one frame. Throws ArgumentException for a missing field or a value that does not fit.</summary>
        public static byte[] Encode(Frame frame)
        {
            var spec = Frames.ByName(frame.Type);
            if (spec == null) throw new ArgumentException("unknown frame " + frame.Type);
            var w = new Writer();
            w.Out.AddRange(new byte[4]);
            w.U8(spec.Code);
            w.U32(frame.Corr);
            foreach (var fs in spec.Fields)
            {
                object v;
                if (!frame.Fields.TryGetValue(fs.Key, out v)) throw new ArgumentException(frame.Type + ": missing field " + fs.Key);
                w.Field(fs.Value, v);
            }
            var b = w.Out.ToArray();
            uint length = (uint)(b.Length - 4);
            b[0] = (byte)(length >> 24); b[1] = (byte)(length >> 16); b[2] = (byte)(length >> 8); b[3] = (byte)length;
            return b;
        }
    }

    /// <summary>Streaming decoder for one connection: handles split and coalesced frames, skips too-large ones.</summary>
    public sealed class FrameReader
    {
        readonly ulong max;
        byte[] buf = new byte[0];
        int len;
        ulong skipping;

        public FrameReader(ulong maxFrameBytes = Frames.DefaultMaxFrameBytes) { max = maxFrameBytes; }

        /// <summary>Append bytes; returns the frames decoded so far, then at most one error.</summary>
        public List<DecodeResult> Push(byte[] data, int offset, int count)
        {
            if (len + count > buf.Length) Array.Resize(ref buf, Math.Max(buf.Length * 2, len + count));
            Buffer.BlockCopy(data, offset, buf, len, count);
            len += count;
            var res = new List<DecodeResult>();
            int at = 0;
            while (true)
            {
                if (skipping > 0)
                {
                    ulong n = Math.Min(skipping, (ulong)(len - at));
                    skipping -= n;
                    at += (int)n;
                    if (skipping > 0) break;
                }
                var d = Codec.Decode(buf, at, len - at, max);
                if (d.Status == DecodeStatus.NeedMore) break;
                res.Add(d);
                if (d.Status == DecodeStatus.Ok) { at += (int)d.Size; continue; }
                if (d.Status == DecodeStatus.Malformed) { at = len; break; }
                skipping = d.Size;
            }
            Buffer.BlockCopy(buf, at, buf, 0, len - at);
            len -= at;
            return res;
        }
    }
}
