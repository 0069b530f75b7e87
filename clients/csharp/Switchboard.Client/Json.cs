// A tiny JSON reader (and string quoting) for what the protocol carries as JSON text — RESULT DEVICES, the
// PASSWORD request's argument — and for the test vectors: objects become Dictionary<string, object>, arrays
// List<object>, strings string, unsigned integers ulong (exact up to 2^64-1), other numbers double,
// true/false bool, null null.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Switchboard.Client
{
public static class Json
{
    public static object Parse(string text)
    {
        int i = 0;
        var v = Value(text, ref i);
        Ws(text, ref i);
        if (i != text.Length) throw new FormatException("JSON: trailing data at " + i);
        return v;
    }

    static void Ws(string t, ref int i) { while (i < t.Length && char.IsWhiteSpace(t[i])) i++; }

    static object Value(string t, ref int i)
    {
        Ws(t, ref i);
        if (i >= t.Length) throw new FormatException("JSON: unexpected end");
        char c = t[i];
        if (c == '{')
        {
            var o = new Dictionary<string, object>();
            i++;
            Ws(t, ref i);
            if (t[i] == '}') { i++; return o; }
            while (true)
            {
                Ws(t, ref i);
                string k = Str(t, ref i);
                Ws(t, ref i);
                Expect(t, ref i, ':');
                o[k] = Value(t, ref i);
                Ws(t, ref i);
                if (t[i] == ',') { i++; continue; }
                Expect(t, ref i, '}');
                return o;
            }
        }
        if (c == '[')
        {
            var a = new List<object>();
            i++;
            Ws(t, ref i);
            if (t[i] == ']') { i++; return a; }
            while (true)
            {
                a.Add(Value(t, ref i));
                Ws(t, ref i);
                if (t[i] == ',') { i++; continue; }
                Expect(t, ref i, ']');
                return a;
            }
        }
        if (c == '"') return Str(t, ref i);
        if (string.CompareOrdinal(t, i, "true", 0, 4) == 0) { i += 4; return true; }
        if (string.CompareOrdinal(t, i, "false", 0, 5) == 0) { i += 5; return false; }
        if (string.CompareOrdinal(t, i, "null", 0, 4) == 0) { i += 4; return null; }
        if (c >= '0' && c <= '9')
        {
            int start = i;
            ulong n = 0;
            while (i < t.Length && t[i] >= '0' && t[i] <= '9') n = n * 10 + (ulong)(t[i++] - '0');
            if (i >= t.Length || (t[i] != '.' && t[i] != 'e' && t[i] != 'E')) return n;
            return Number(t, ref i, start);
        }
        if (c == '-') return Number(t, ref i, i++);
        throw new FormatException("JSON: unexpected '" + c + "' at " + i);
    }

    static double Number(string t, ref int i, int start)
    {
        while (i < t.Length && "0123456789.eE+-".IndexOf(t[i]) >= 0) i++;
        return double.Parse(t.Substring(start, i - start), CultureInfo.InvariantCulture);
    }

    /// <summary>A JSON string literal for the text (quotes, backslashes and control characters escaped).</summary>
    public static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            if (c == '"' || c == '\\') sb.Append('\\').Append(c);
            else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    static void Expect(string t, ref int i, char c)
    {
        if (i >= t.Length || t[i] != c) throw new FormatException("JSON: expected '" + c + "' at " + i);
        i++;
    }

    static string Str(string t, ref int i)
    {
        Expect(t, ref i, '"');
        var sb = new StringBuilder();
        while (t[i] != '"')
        {
            char c = t[i++];
            if (c != '\\') { sb.Append(c); continue; }
            char e = t[i++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'u': sb.Append((char)int.Parse(t.Substring(i, 4), NumberStyles.HexNumber)); i += 4; break; // UTF-16 units, pairs included
                default: sb.Append(e); break;
            }
        }
        i++;
        return sb.ToString();
    }
}
}
