/**
 * The kind codes in data directories and PostgreSQL rows written so far (before src/schema/message.ts they were
 * the index in a list). Pinned here, not derived from the schema: a schema that renumbered a kind fails the
 * stores' tests, because rows already on disk would change meaning.
 */
import type { MessageKind } from '../../src/schema/message.js'

export const STORED_KIND_CODES: Readonly<Record<MessageKind, number>> = {
  text: 0,
  file: 1,
  receipt: 2,
  notice: 3,
  control: 4,
}
