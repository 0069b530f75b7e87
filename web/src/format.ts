/**
 * A message's text as pieces to draw: plain text, links, and plain-text emphasis (*bold*, _italic_,
 * `code`). Pure data, never HTML: the view turns each piece into a Preact element whose text Preact escapes,
 * so nothing a user writes becomes markup. Links are found by linkifyjs and kept only when their address is
 * http(s) or mailto: a `javascript:` or `data:` address stays text.
 */
import { find } from 'linkifyjs'

export type Piece =
  | { kind: 'text'; text: string }
  | { kind: 'link'; text: string; href: string }
  | { kind: 'bold' | 'italic' | 'code'; text: string }

const SAFE_HREF = /^(https?:\/\/|mailto:)/i

/** `*bold*`, `_italic_`, `` `code` ``: the marks hug a word (no space inside) and stand apart from other words. */
const EMPHASIS = /(^|[\s([{"'])([*_`])(?=\S)([^\n]*?\S)\2(?=$|[\s)\]}"'.,;:!?])/g
const KIND = { '*': 'bold', _: 'italic', '`': 'code' } as const

function emphasis(text: string, out: Piece[]): void {
  let at = 0
  for (const m of text.matchAll(EMPHASIS)) {
    const start = m.index + m[1]!.length
    if (start > at) out.push({ kind: 'text', text: text.slice(at, start) })
    out.push({ kind: KIND[m[2] as keyof typeof KIND], text: m[3]! })
    at = start + m[2]!.length * 2 + m[3]!.length
  }
  if (at < text.length) out.push({ kind: 'text', text: text.slice(at) })
}

/** Split a message's text into pieces; joined back, their text is the original's (marks aside). */
export function pieces(text: string): Piece[] {
  const out: Piece[] = []
  let at = 0
  for (const l of find(text)) {
    if (!l.isLink || !SAFE_HREF.test(l.href)) continue
    if (l.start > at) emphasis(text.slice(at, l.start), out)
    out.push({ kind: 'link', text: l.value, href: l.href })
    at = l.end
  }
  if (at < text.length) emphasis(text.slice(at), out)
  return out
}
