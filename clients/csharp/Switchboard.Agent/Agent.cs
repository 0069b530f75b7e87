// Interop agent: the scriptable face of the library that test/interop/matrix.test.ts drives.
// Same commands and output as clients/python/switchboard_client/agent.py:
//   agent.exe --host H --port P register --name N                 -> WELCOME <id> <token>
//   ... --name N --token T send --to NAME --text TEXT [--expect-receipt CODE] -> ACCEPTED <status> <seq> / RECEIPT <code>
//   ... --name N --token T recv --count N [--poll]                -> READY / MSG <fromName>\t<text>
//   ... --name N --token T set-password --new-password P [--password CURRENT] -> PASSWORD set
//   ... --name N --token T history --with W [--limit L]   -> HIST <seq> <from> <to> <flags>\t<text>, PAGE <more> <n>,
//                                                            HISTORY <total>
//   ... --name N --token T devices                        -> DEVICE <id> <current 0|1>\t<label> ..., DEVICES <n>
// Instead of --token, --password P logs in with the password as a new device and first prints WELCOME <id> <token>.
// Exit 0 when what was asked happened, 1 on timeout, 2 on an error.
using System;
using System.Collections.Generic;
using System.Text;
using Switchboard.Client;

static class Agent
{
    static void Out(string line) { Console.Out.Write(line + "\n"); Console.Out.Flush(); }

    static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(false);
        string host = "127.0.0.1", name = "", token = "", cmd = "", to = "", text = "", password = "", newPassword = "",
            with = "";
        int port = 7070, expect = 0, count = 1, limit = 50;
        double timeoutS = 15;
        bool poll = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            Func<string> next = () =>
            {
                if (i + 1 >= args.Length) throw new ArgumentException(a + " needs a value");
                return args[++i];
            };
            switch (a)
            {
                case "--host": host = next(); break;
                case "--port": port = int.Parse(next()); break;
                case "--name": name = next(); break;
                case "--token": token = next(); break;
                case "--timeout": timeoutS = double.Parse(next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--to": to = next(); break;
                case "--text": text = next(); break;
                case "--expect-receipt": expect = int.Parse(next()); break;
                case "--count": count = int.Parse(next()); break;
                case "--poll": poll = true; break;
                case "--password": password = next(); break;
                case "--new-password": newPassword = next(); break;
                case "--with": with = next(); break;
                case "--limit": limit = int.Parse(next()); break;
                case "register": case "send": case "recv": case "set-password": case "history": case "devices": cmd = a; break;
                default: Console.Error.WriteLine("ERROR unknown argument " + a); return 2;
            }
        }
        var deadline = DateTime.UtcNow.AddSeconds(timeoutS);
        Func<int> left = () => Math.Max(0, (int)(deadline - DateTime.UtcNow).TotalMilliseconds);
        try
        {
            using (var c = new SwitchboardClient(host, port, (int)(timeoutS * 1000)))
            {
                if (cmd == "register")
                {
                    var w = c.Register(name);
                    Out("WELCOME " + w.Id + " " + w.Token);
                    c.Bye();
                    return 0;
                }
                if (password.Length > 0 && cmd != "set-password")
                {
                    var w = c.LoginPassword(name, password, poll);
                    Out("WELCOME " + w.Id + " " + w.Token);
                }
                else c.Login(token, 0, name, poll);
                if (cmd == "set-password")
                {
                    c.SetPassword(newPassword, password.Length > 0 ? password : null);
                    Out("PASSWORD set");
                    c.Bye();
                    return 0;
                }
                if (cmd == "history")
                {
                    var addr = with.Length == 0 ? Address.All() : Address.Parse(with);
                    ulong before = 0;
                    int total = 0;
                    while (true)
                    {
                        var page = c.History(addr, before, limit);
                        foreach (var m in page.Messages)
                            Out("HIST " + m.Seq + " " + m.FromName + " " + m.To + " " + m.Flags + "\t" + m.Text);
                        Out("PAGE " + (page.More ? 1 : 0) + " " + page.Messages.Count);
                        total += page.Messages.Count;
                        if (!page.More || page.Messages.Count == 0) break;
                        before = page.Messages[page.Messages.Count - 1].Seq;
                    }
                    Out("HISTORY " + total);
                    c.Bye();
                    return 0;
                }
                if (cmd == "devices")
                {
                    var devices = c.Devices();
                    foreach (var d in devices) Out("DEVICE " + d.Id + " " + (d.Current ? 1 : 0) + "\t" + d.Label);
                    Out("DEVICES " + devices.Count);
                    c.Bye();
                    return 0;
                }
                if (cmd == "send")
                {
                    var acc = c.Send(Address.Parse(to), text, expect != 0);
                    Out("ACCEPTED " + acc.Status + " " + acc.Seq);
                    if (expect == 0) { c.Bye(); return 0; }
                    while (left() > 0)
                    {
                        var ev = c.NextEvent(left());
                        if (ev == null || ev.Kind == EventKind.Closed) break;
                        if (ev.Kind == EventKind.Receipt && ev.Receipt.MsgId == acc.MsgId)
                        {
                            Out("RECEIPT " + ev.Receipt.Status);
                            if (ev.Receipt.Status == expect) { c.Bye(); return 0; }
                        }
                    }
                    Out("TIMEOUT");
                    return 1;
                }
                if (cmd != "recv") { Console.Error.WriteLine("ERROR give a command: register, send, recv, set-password, history or devices"); return 2; }
                Out("READY");
                int got = 0;
                while (got < count && left() > 0)
                {
                    var msgs = new List<Message>();
                    if (poll) msgs = c.Take(count - got, false, 500);
                    else
                    {
                        var ev = c.NextEvent(left());
                        if (ev == null || ev.Kind == EventKind.Closed) break;
                        if (ev.Kind == EventKind.Message) msgs.Add(ev.Message);
                    }
                    foreach (var m in msgs)
                        if (m.Kind == (byte)MessageKind.Text) { Out("MSG " + m.FromName + "\t" + m.Text); got++; }
                }
                if (got < count) { Out("TIMEOUT"); return 1; }
                c.Bye();
                return 0;
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("ERROR " + e.Message);
            return 2;
        }
    }
}
