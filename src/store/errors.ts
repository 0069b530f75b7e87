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
  /** The disk (or quota) holding the data is full: the write was not applied; it can be retried once there is space. */
  FULL: 'the storage is full',
} as const

export type StoreErrorCode = keyof typeof StoreErrorCodes

export class StoreError extends Error {
  override readonly name = 'StoreError'
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions & {
      /** Where the data is (FULL: the directory whose file system is full), for the server's log, never for the client. */
      where?: string
    },
  ) {
    super(message, options)
    if (options?.where !== undefined) this.where = options.where
  }
  readonly where?: string
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

/** The text a client is shown for FULL: what happened and that retrying later is safe (the path stays in the log). */
export const STORAGE_FULL_TEXT = "the server's storage is full: nothing was stored; retry once it has space again"

/** The error a store raises when its disk is full, naming the directory (for the log). */
export function storageFull(where: string, cause: unknown): StoreError {
  return new StoreError('FULL', STORAGE_FULL_TEXT, { cause, where })
}
