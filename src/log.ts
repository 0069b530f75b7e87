import pino from 'pino'
import type { Logger } from './core/types.js'

/** Structured JSON logs; pretty when a person is watching (stderr is a terminal) or when asked. */
export function makeLogger(level: string, format: string): Logger & pino.Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true)
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    })
  }
  return pino({ level }, pino.destination({ fd: 2, sync: false }))
}
