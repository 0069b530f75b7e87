/**
 * Passwords at the terminal: asked for without echo on a terminal, or read as one line from stdin for scripts
 * (`--password-stdin`, as docker login does), so a password is never an argument (visible in ps and history).
 */
import readline from 'node:readline'
import { Writable } from 'node:stream'

/**
 * An output for readline that can be muted: while `muted`, what readline echoes (the typed characters) is
 * dropped. It forwards the terminal's size, which readline reads to lay the line out.
 */
export class MutableOutput extends Writable {
  muted = false

  constructor(private readonly target: NodeJS.WriteStream) {
    super()
    target.on('resize', () => this.emit('resize'))
  }

  get columns(): number {
    return this.target.columns
  }

  get rows(): number {
    return this.target.rows
  }

  get isTTY(): boolean {
    return this.target.isTTY
  }

  // Done at once, so that each write reaches here as it is made: muting applies from the next write on, not to
  // writes buffered behind a slow one.
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (!this.muted) this.target.write(chunk)
    done()
  }
}

/** Ask for a secret on the terminal without echoing it. Throws when stdin is not a terminal. */
export async function promptSecret(question: string): Promise<string> {
  if (process.stdin.isTTY !== true) throw new Error('stdin is not a terminal to ask for the password on: use --password-stdin')
  const output = new MutableOutput(process.stdout)
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true })
  try {
    const answer = new Promise<string>((res) => rl.question(question, res))
    output.muted = true // the question is written; what is typed now is not
    const secret = await answer
    process.stdout.write('\n')
    return secret
  } finally {
    rl.close()
  }
}

/** The first line of stdin (without its line ending); '' at once-empty input. */
export async function readStdinLine(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const rl = readline.createInterface({ input, terminal: false, crlfDelay: Infinity })
  try {
    for await (const line of rl) return line
    return ''
  } finally {
    rl.close()
  }
}

/** The password a command was given: from stdin with `--password-stdin`, else asked for on the terminal. */
export async function passwordFrom(flags: { passwordStdin?: boolean }, question = 'password: '): Promise<string> {
  return flags.passwordStdin === true ? readStdinLine() : promptSecret(question)
}
