import type { Session } from '../../core/session.js'
import type { Frame } from './frames.js'
import type { NativeConnection } from './adapter.js'

/** File frames (FILE_BEGIN … DOWNLOAD) are handled here, on top of the core's FileService. */
export interface FileHandler {
  handle(conn: NativeConnection, session: Session, frame: Frame): Promise<void>
  /** The connection is gone: abort its unfinished uploads. */
  connectionClosed(conn: NativeConnection): void
}
