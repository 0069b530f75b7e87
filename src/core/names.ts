/**
 * Name rules: what a user name may contain, and when two names are the same to a reader.
 *
 * Two names that look alike are one name: a name is refused when its confusable skeleton equals a registered
 * name's or a reserved name's (`all`, `server`). The skeleton is Unicode TR39's (NFD, the confusables mapping,
 * NFD) taken case-insensitively. The mapping is Unicode's confusables.txt as packaged by `unhomoglyph`.
 * Characters a reader cannot see are refused outright rather than folded away.
 */
import unhomoglyph from 'unhomoglyph'
import { BrokerError } from './errors.js'

/** Bump when the skeleton function changes (new rules or new confusables data): stores recompute their column. */
export const SKELETON_VERSION = '1:unhomoglyph-1.0.6'

const RESERVED = ['all', 'server']

/** Case folding close to Unicode's full folding (ß → ss, ς → σ), which JavaScript has no direct call for. */
function fold(s: string): string {
  return s.toUpperCase().toLowerCase()
}

/**
 * The confusable skeleton of a name: NFKC (fullwidth and other compatibility forms become their plain letters),
 * case-folded, then TR39's NFD → confusables map → NFD, case-folded again. Folding before the mapping as well as
 * after makes `ALICE` and `alice` one skeleton (the table maps capital I to l, small i to itself).
 */
export function nameSkeleton(name: string): string {
  return fold(unhomoglyph(fold(name.normalize('NFKC')).normalize('NFD')).normalize('NFD'))
}

const RESERVED_SKELETONS = new Map(RESERVED.map((n) => [nameSkeleton(n), n]))

/** Code points that show nothing, or a blank, yet are not white space: refused anywhere in a name. */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u
/** Blank-looking symbols that are neither white space nor default-ignorable (the Braille blank). */
const BLANK_LOOKING = /[\u2800]/u
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u

function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
}

/**
 * NFC, one word, no control characters, at most `maxBytes` UTF-8 bytes. A user name (`what` = 'name') must
 * also be visible: no default-ignorable code point (joiners, variation selectors, Hangul fillers, a byte order
 * mark), no blank-looking symbol, at least one letter or digit, and it must not look like a reserved name.
 */
export function normalizeName(raw: string, maxBytes: number, what = 'name', limit = 'maxNameBytes'): string {
  if (raw.startsWith('\uFEFF'))
    throw new BrokerError(
      'SB_ERR_NAME_INVALID',
      `the ${what} starts with a byte order mark (U+FEFF); send the ${what} without it`,
    )
  const name = raw.normalize('NFC')
  if (name.length === 0) throw new BrokerError('SB_ERR_NAME_INVALID', `the ${what} is empty`)
  if (Buffer.byteLength(name) > maxBytes)
    throw new BrokerError('SB_ERR_TOO_LARGE', `the ${what} is longer than ${limit} (${maxBytes} bytes)`, limit)
  if (/[\s\p{C}]/u.test(name))
    throw new BrokerError('SB_ERR_NAME_INVALID', `the ${what} "${name}" has spaces or control characters`)
  if (what !== 'name') return name
  const invisible = INVISIBLE.exec(name) ?? BLANK_LOOKING.exec(name)
  if (invisible !== null)
    throw new BrokerError(
      'SB_ERR_NAME_INVALID',
      `the name has an invisible or blank character (${codePoint(invisible[0])}); use letters, digits and visible symbols`,
    )
  if (!LETTER_OR_DIGIT.test(name)) throw new BrokerError('SB_ERR_NAME_INVALID', `the name "${name}" has no letter or digit`)
  const reserved = RESERVED_SKELETONS.get(nameSkeleton(name))
  if (reserved !== undefined || /^[#@!]/.test(name))
    throw new BrokerError(
      'SB_ERR_NAME_INVALID',
      reserved !== undefined && reserved !== name.toLowerCase()
        ? `the name "${name}" looks like the reserved name "${reserved.toUpperCase()}"`
        : `the name "${name}" is reserved`,
    )
  return name
}
