// switchboard-cs: a command-line chat over the native protocol.
// A line without a slash goes to the room (ALL). Commands: /to NAME TEXT, /t TOPIC TEXT, /sub TOPIC,
// /unsub TOPIC, /take [N], /who, /whoami, /rename NAME, /quit. The token from registration is kept in the
// state file (~/.switchboard-cs, or --state), so the next start resumes the same user.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Switchboard.Client;

static class Program
{
    static readonly object OutGate = new object();

    static void Say(string line) { lock (OutGate) { Console.Out.Write(line + "\n"); Console.Out.Flush(); } }

    static string Describe(Message m)
    {
        if (m.Kind == (byte)MessageKind.Receipt) return "[receipt] " + m.Text; // a receipt taken by polling: its body is JSON
        string where = m.Topic.Length > 0 ? "#" + m.Topic : (m.To == Frames.AllId ? "room" : "private");
        var at = DateTimeOffset.FromUnixTimeMilliseconds((long)m.Ts).ToLocalTime();
        return at.ToString("HH:mm") + " [" + where + "] " + m.FromName + ": " + m.Text;
    }

    // The state file: one line per server, "host:port id token name".
    static List<string[]> Load(string path)
    {
        var all = new List<string[]>();
        if (!File.Exists(path)) return all;
        foreach (var line in File.ReadAllLines(path))
        {
            var p = line.Split(new[] { ' ' }, 4);
            if (p.Length == 4) all.Add(p);
        }
        return all;
    }

    static void Save(string path, List<string[]> all)
    {
        File.WriteAllLines(path, all.Select(p => string.Join(" ", p)).ToArray());
    }

    static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(false);
        string host = Environment.GetEnvironmentVariable("SWITCHBOARD_HOST") ?? "127.0.0.1";
        int port = int.Parse(Environment.GetEnvironmentVariable("SWITCHBOARD_PORT") ?? "7070");
        string name = "", state = Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? ".", ".switchboard-cs");
        bool poll = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--host" && i + 1 < args.Length) host = args[++i];
            else if (args[i] == "--port" && i + 1 < args.Length) port = int.Parse(args[++i]);
            else if (args[i] == "--name" && i + 1 < args.Length) name = args[++i];
            else if (args[i] == "--state" && i + 1 < args.Length) state = args[++i];
            else if (args[i] == "--poll") poll = true;
            else
            {
                Console.WriteLine("usage: switchboard-cs [--host H] [--port P] [--name NAME] [--state FILE] [--poll]\n" +
                                  "  a line goes to the room; /to NAME TEXT, /t TOPIC TEXT, /sub TOPIC, /unsub TOPIC,\n" +
                                  "  /take [N], /who, /whoami, /rename NAME, /quit");
                return args[i] == "--help" ? 0 : 2;
            }
        }
        string key = host + ":" + port;
        var states = Load(state);
        var me = states.FirstOrDefault(p => p[0] == key && (name.Length == 0 || name == p[3]));
        SwitchboardClient c;
        try
        {
            c = new SwitchboardClient(host, port);
            if (me != null)
            {
                var w = c.Login(me[2], uint.Parse(me[1]), "", poll);
                Say("welcome back, " + w.Name + " (id " + w.Id + ") on " + w.Server);
            }
            else
            {
                if (name.Length == 0) { Console.Write("name: "); name = (Console.ReadLine() ?? "").Trim(); }
                var w = c.Register(name, poll);
                me = new[] { key, w.Id.ToString(), w.Token, w.Name };
                states.Add(me);
                Save(state, states);
                Say("registered as " + w.Name + " (id " + w.Id + ") on " + w.Server + "; token saved in " + state);
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("switchboard-cs: " + e.Message);
            return 1;
        }

        bool quitting = false;
        var pump = new Thread(() =>
        {
            while (true)
            {
                var ev = c.NextEvent(250);
                if (ev == null) { if (quitting) return; continue; }
                switch (ev.Kind)
                {
                    case EventKind.Message: Say(Describe(ev.Message)); break;
                    case EventKind.Receipt:
                        Say("[receipt] message " + ev.Receipt.MsgId + " to " + ev.Receipt.RecipientName + ": " +
                            ev.Receipt.Status + " " + Frames.ReceiptStatusName((ulong)ev.Receipt.Status));
                        break;
                    case EventKind.Frame:
                        var f = ev.Frame;
                        if (f.Type == "NOTICE") Say("[notice] " + f.Str("text"));
                        else if (f.Type == "RENAMED") Say("[renamed] " + f.Str("oldName") + " is now " + f.Str("newName"));
                        else if (f.Type == "CLOSING" && !quitting) Say("[closed] " + f.Str("reason") + ": " + f.Str("text"));
                        else if (f.Type == "ERROR") Say("[error] " + f.Str("message"));
                        break;
                    case EventKind.Closed:
                        if (!quitting) Say("[disconnected] " + c.CloseReason);
                        return;
                }
            }
        }) { IsBackground = true };
        pump.Start();

        var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
        string line;
        while (!c.Closed && (line = input.ReadLine()) != null)
        {
            if (line.Length == 0) continue;
            string cmd = "", rest = line;
            if (line[0] == '/')
            {
                int sp = line.IndexOf(' ');
                cmd = sp < 0 ? line : line.Substring(0, sp);
                rest = sp < 0 ? "" : line.Substring(sp + 1);
            }
            int sp2 = rest.IndexOf(' ');
            string first = sp2 < 0 ? rest : rest.Substring(0, sp2), tail = sp2 < 0 ? "" : rest.Substring(sp2 + 1);
            try
            {
                switch (cmd)
                {
                    case "":
                        Say("-> room (" + c.Send(Address.All(), rest).Recipients + " online)");
                        break;
                    case "/to":
                    case "/msg":
                    {
                        var a = c.Send(Address.Parse(first), tail, true);
                        Say("-> " + first + ": " + a.Status + " (message " + a.MsgId + ", seq " + a.Seq + ")");
                        break;
                    }
                    case "/t":
                    {
                        var topic = first.TrimStart('#');
                        var a = c.Send(Address.Topic(topic), tail, true);
                        Say("-> #" + topic + ": " + a.Status + " to " + a.Recipients + " subscribers");
                        break;
                    }
                    case "/sub": c.Subscribe(rest); Say("subscribed to #" + rest); break;
                    case "/unsub": c.Unsubscribe(rest); Say("unsubscribed from #" + rest); break;
                    case "/who":
                    {
                        var users = c.Who();
                        Say(users.Count + " online: " + string.Join(", ", users.Select(u => u.Name + " (" + u.Id + ", " + u.Protocol + ")").ToArray()));
                        break;
                    }
                    case "/whoami": { var u = c.Whoami(); Say("you are " + u.Name + " (id " + u.Id + ")"); break; }
                    case "/rename":
                    {
                        var n = c.Rename(rest);
                        me[3] = n;
                        Save(state, states);
                        Say("you are now " + n);
                        break;
                    }
                    case "/take":
                    {
                        var msgs = c.Take(rest.Length > 0 ? int.Parse(rest) : 100);
                        foreach (var m in msgs) Say(Describe(m));
                        Say("(" + msgs.Count + " taken)");
                        break;
                    }
                    case "/quit":
                    case "/exit":
                        goto done;
                    default: Say("unknown command " + cmd + " (see --help)"); break;
                }
            }
            catch (ServerError e) { Say("[error] " + e.Message); }
            catch (Exception e) { Say("[error] " + e.Message); break; }
        }
        done:
        quitting = true;
        c.Bye();
        pump.Join(1000);
        return 0;
    }
}
