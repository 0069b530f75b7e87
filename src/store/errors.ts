/**
 * The errors a Store raises. A store knows nothing of the broker's error codes or of the wire: it says what
 * went wrong in its own terms, and the core maps each code to a BrokerError where it meets the store
 * (src/core/store-errors.ts). Anything else a store throws is a fault (the core reports it as internal).
 */

export const StoreErrorCodes = {
  /** createUser / renameUser: the (NFC) name belongs to another user. */
  NAME_TAKEN: 'the name is already in use',
  /** The backing database cannot be reached or dropped the connection; the request may or may not have been applied. */
  UNAVAILABLE: 'the store is unavailable',
  /** The data was written by a newer program (its schema version is above ours). */
  SCHEMA_TOO_NEW: 'the database schema is newer than this program',
} as const

export type StoreErrorCode = keyof typeof StoreErrorCodes

export class StoreError extends Error {
  override readonly name = 'StoreError'
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export function isStoreError(err: unknown): err is StoreError {
  return err instanceof StoreError
}

/**
 * The error createUser and renameUser raise for a name in use (one text for every backend): the same name, or
 * one that looks like `holder` (the same confusable skeleton, core/names.ts).
 */
export function nameTaken(name: string, holder?: string): StoreError {
  return new StoreError(
    'NAME_TAKEN',
    holder === undefined || holder === name
      ? `the name "${name}" is already in use`
      : `the name "${name}" looks like "${holder}", which is already in use`,
  )
}
