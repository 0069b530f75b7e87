/**
 * `switchboard chat NAME`: the interactive terminal client (node:readline).
 *
 * Plain text goes to the room (ALL), as in the 002/004 chat rooms — unless a direct conversation is open,
 * then it goes there, as in 003's direct chat (/all TEXT still reaches the room). The command words of the
 * originals work beside readable long forms: 003's @target, refresh, !topic, #user and y/n; 004's
 * >>chname<<, >>exit<< and >>sendfile<<.
 */
import readline from 'node:readline'
import { resolve } from 'node:path'
import { SwitchboardClient, SwitchboardError, type IncomingMessage, type SendResult, type Target } from '../client/client.js'
import { downloadToFile, fileSource } from '../client/node-files.js'
import type { ServerFlags } from './commands.js'
import { connectOptions, loginError, refusalText } from './oneshot.js'
import { bytes, dateTime, hhmmss, historyLines, progressBar, receiptText } from './format.js'
import { MutableOutput } from './secret.js'

export const HELP = `Commands (plain text goes to the room, or to the open conversation):
  /msg NAME TEXT        message a user (receipts: ✓ stored, ✓✓ delivered, … not yet, read)
  @TARGET [TEXT]        003: mail a user or a topic; without TEXT you are asked for it
  /all TEXT             say something in the room (everyone online)
  /pub TOPIC TEXT       mail a topic's subscribers
  /who                  who is online
  /seen NAME            when NAME was last seen (online now, or when it left)
  /rename NAME          take a new name            (004: >>chname<< NAME)
  /subscribe TOPIC      subscribe to a topic       (003: !TOPIC)
  /unsubscribe TOPIC    /topics   /subscriptions
  /inbox                mail that arrived since you last looked (003: refresh)
  /talk NAME            ask NAME for a direct conversation (003: #NAME); answer a request with y or n
  /close                close the open conversation
  /send-file [@TARGET] PATH [TEXT]   send a file to the room or a target (004: >>sendfile<< PATH [TEXT])
  /download ID [DIR]    download a file you were sent
  /block NAME  /unblock NAME
  /history [NAME]       this session's messages; with NAME, your history with NAME from the server (or topic:NAME)
  /devices              your devices (each login with the password is one)
  /revoke ID            end a device: its token stops working
  /password             set, change or clear your password (asked without echo)
  /help                 this list
  /quit                 leave                      (004: >>exit<<)`

interface Sent {
  short: number
  to: string
}

/** Exit statuses of `switchboard chat`. */
export const ChatExit = { QUIT: 0, LOGIN_FAILED: 1, ENDED_BY_SERVER: 2 } as const

/** Ask a yes/no question on the terminal before the chat starts. */
async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout })
  try {
    const answer = await new Promise<string>((res) => rl.question(question, res))
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}

/** Log in as `name`; a name with no remembered account is registered only when the person says so. */
async function logIn(name: string, flags: ServerFlags & { register?: boolean }, server: string): Promise<SwitchboardClient> {
  const opts = { ...connectOptions(flags, name), autoRead: true }
  if (flags.register === true) return SwitchboardClient.connect(opts)
  try {
    return await SwitchboardClient.connect({ ...opts, register: false })
  } catch (err) {
    if (!(err instanceof SwitchboardError) || err.code !== 'SB_ERR_NOT_LOGGED_IN') throw err
    if (process.stdin.isTTY !== true) throw err
    const yes = await confirm(`No account "${name}" is remembered here for ${server}. Register "${name}" now? [y/N] `)
    if (!yes) throw err
    return SwitchboardClient.connect({ ...opts, register: true })
  }
}

/** What the server's reason for ending the session means, for a person. */
function endedText(name: string, reason: string, text: string): string {
  switch (reason) {
    case 'replaced':
      return (
        `* this chat was ended: "${name}" logged in again elsewhere with this device's token (another ` +
        `"switchboard chat ${name}" here), and a device has one session at a time. Run "switchboard chat ${name}" to come back.`
      )
    case 'revoked':
      return `* this chat was ended: this device of "${name}" was revoked (from another device). Log in again with "switchboard login ${name}".`
    case 'deleted':
      return `* this chat was ended: the account "${name}" was deleted`
    case 'auth':
      return `* this chat was ended: the server no longer accepts the token for "${name}" (${text})`
    case 'unreachable':
      return `* this chat was ended: the server could not be reached again${text ? ` (${text})` : ''}`
    default:
      return `* disconnected by the server: ${reason}${text ? ` (${text})` : ''}`
  }
}

export async function runChat(name: string, flags: ServerFlags & { register?: boolean }): Promise<number> {
  const server = flags.url ?? `${flags.host}:${flags.port}`
  let client: SwitchboardClient
  try {
    client = await logIn(name, flags, server)
  } catch (err) {
    process.stderr.write(
      `switchboard chat: ${loginError(err, name, server, `answer y when asked, or add --register to register it`)}\n`,
    )
    return ChatExit.LOGIN_FAILED
  }

  const out = process.stdout
  // readline writes through this, so that a password typed for /password is not echoed.
  const echo = new MutableOutput(out)
  const rl = readline.createInterface({
    input: process.stdin,
    output: echo,
    terminal: process.stdin.isTTY === true && out.isTTY === true,
    historySize: 500,
  })
  const history: string[] = []
  const unreadMail: IncomingMessage[] = []
  const sentByMsgId = new Map<number, Sent>()
  let shortIds = 0
  let conversation: { id: string; peer: string } | undefined
  let request: { id: string; peer: string } | undefined
  let waitingFor:
    | { kind: 'mail'; target: string }
    /** /password: asking for the current one, the new one, and the new one again; none is echoed. */
    | { kind: 'secret'; step: 'current' | 'new' | 'again'; current?: string; next?: string }
    | undefined
  let quitting = false
  /** Set when the server ended the session (not the person): the chat exits non-zero. */
  let endedByServer = false
  /** While reconnecting: the one status line, shown in place of the prompt and updated per attempt. */
  let reconnectStatus: string | undefined

  const setPrompt = (): void => {
    const prompt = waitingFor
      ? waitingFor.kind === 'secret'
        ? {
            current: 'current password (Enter if none)> ',
            new: 'new password (Enter to clear it)> ',
            again: 'new password again> ',
          }[waitingFor.step]
        : `text for ${waitingFor.target}> `
      : request
        ? `accept ${request.peer}? [y/n]> `
        : conversation
          ? `${client.name} ⇄ ${conversation.peer}> `
          : `${client.name}> `
    rl.setPrompt(reconnectStatus !== undefined ? `[${reconnectStatus}] ${prompt}` : prompt)
  }
  /** Print above the input line without eating what the person is typing. */
  const print = (line: string, keep = true): void => {
    if (rl.terminal) {
      readline.clearLine(out, 0)
      readline.cursorTo(out, 0)
    }
    out.write(line + '\n')
    if (keep) history.push(line)
    if (!quitting) {
      setPrompt()
      // While a password is typed the prompt is written past readline, which would echo the line typed so far.
      if (echo.muted) out.write(rl.getPrompt())
      else rl.prompt(true)
    }
  }
  const fail = (err: unknown): void => {
    const e = err as SwitchboardError
    print(`! ${e.message}${e.code ? ` (${e.code}${e.limit ? `, limit ${e.limit}` : ''})` : ''}`, false)
  }

  const show = (m: IncomingMessage): string => {
    const t = `[${hhmmss(m.ts)}]`
    const file = m.file ? ` [file ${m.file.name}, ${bytes(m.file.size)} — /download ${m.file.fileId}]` : ''
    if (m.kind === 'notice') return `${t} * ${m.text}`
    // A sent copy: sent by this user from another device.
    if (m.sent && m.topic !== undefined) return `${t} you @${m.topic} (from another device): ${m.text}${file}`
    if (m.sent) return `${t} you → ${names.get(m.to) ?? `#${m.to}`} (from another device): ${m.text}${file}`
    if (m.topic !== undefined) return `${t} ${m.fromName} @${m.topic}: ${m.text}${file}`
    if (m.to === 0xffffffff) return `${t} ${m.fromName}: ${m.text}${file}`
    return `${t} ${m.fromName} → you: ${m.text}${file}`
  }
  /** Names of the users seen in this session by id (a sent copy names its recipient by id only). */
  const names = new Map<number, string>()

  client.on('message', (m) => {
    if (m.from !== client.id && m.fromName !== '') names.set(m.from, m.fromName)
    if (m.kind !== 'notice' && m.to !== 0xffffffff && !m.sent) unreadMail.push(m)
    print(show(m))
  })
  client.on('receipt', (r) => {
    const s = sentByMsgId.get(r.msgId)
    print(s ? `  #${s.short} ${receiptText(r)}` : `  (earlier message ${r.msgId}) ${receiptText(r)}`)
  })
  client.on('notice', (n) => print(`* ${n.text}`))
  client.on('rename', (e) => {
    if (e.id !== client.id) print(`* ${e.oldName} is now ${e.newName}`)
  })
  client.on('presence', (p) => print(`* ${p.name} ${p.online ? 'came online' : 'went offline'}`))
  client.on('error', (e) => fail(e.error))
  client.on('conversation', (e) => {
    switch (e.event) {
      case 'request':
        request = { id: e.convId, peer: e.peer.name }
        print(`* ${e.peer.name} asks for a direct conversation. Accept? answer y or n`)
        break
      case 'accepted':
        conversation = { id: e.convId, peer: e.peer.name }
        print(`* direct conversation with ${e.peer.name} is open: plain text goes to them; /close ends it`)
        break
      case 'declined':
        print(`* ${e.peer.name} declined the conversation`)
        break
      case 'expired':
        if (request?.id === e.convId) request = undefined
        print(`* the conversation request ${e.peer.name === client.name ? '' : `with ${e.peer.name} `}expired`)
        break
      case 'closed':
        if (conversation?.id === e.convId) conversation = undefined
        print(`* conversation with ${e.peer.name} closed${e.reason ? `: ${e.reason}` : ''}`)
        break
      case 'message':
        print(`[${hhmmss(Date.now())}] ${e.peer.name} ⇄ you: ${e.text ?? ''}`)
        break
    }
  })
  // One line says why the connection was lost (the server's reason when it gave one); the attempts after it
  // update one status line in place of the prompt instead of printing a line each.
  client.on('reconnecting', (e) => {
    const next = `reconnecting: attempt ${e.attempt}, next in ${(e.delayMs / 1000).toFixed(1)} s`
    if (e.attempt === 1) {
      reconnectStatus = next
      const why =
        e.text !== undefined && e.text !== ''
          ? `the server said: ${e.text} (${e.reason ?? ''})`
          : e.error
            ? e.error.message
            : 'the connection closed'
      print(`* connection lost — ${why}; reconnecting (messages you send wait until it is back)`, false)
      return
    }
    reconnectStatus = `${next}${e.error ? ` — ${e.error.message}` : ''}`
    if (!quitting) {
      setPrompt()
      rl.prompt(true)
    }
  })
  client.on('reconnected', (e) => {
    reconnectStatus = undefined
    print(
      `* reconnected as ${client.name} after ${e.attempts} attempt(s)${e.resent > 0 ? `; ${e.resent} unconfirmed message(s) sent again` : ''}`,
      false,
    )
  })
  client.on('closed', (e) => {
    if (quitting) return
    reconnectStatus = undefined
    endedByServer = true
    quitting = true
    print(endedText(client.name, e.reason, e.text), false)
    rl.close()
  })

  const describeTarget = (t: Target): string =>
    typeof t === 'string'
      ? t
      : t.kind === 'topic'
        ? `@${t.topic}`
        : t.kind === 'all'
          ? 'room'
          : t.kind === 'user'
            ? `#${t.id}`
            : t.kind

  /** Send, show the short id, and let receipts print as they come. */
  const send = (to: Target, text: string, fallbackTopic = false): void => {
    const short = ++shortIds
    const label = describeTarget(to)
    // The msgId is chosen here so that a receipt arriving before the promise settles finds its short id.
    const msgId = client.nextMsgId()
    sentByMsgId.set(msgId, { short, to: label })
    const p = client.send(to, text, { msgId })
    print(`  #${short} → ${label}: ${text}`)
    void p.then(
      (r: SendResult) => {
        if (r.receipt === undefined) {
          if (r.accepted === 'delivered') print(`  #${short} ✓ sent to ${r.recipients} online`)
          else if (r.accepted === 'scheduled') print(`  #${short} scheduled`)
          else if (typeof to !== 'string' && to.kind === 'topic') print(`  #${short} ✓ stored for ${r.recipients} subscriber(s)`)
        }
      },
      (err: unknown) => {
        if (
          fallbackTopic &&
          typeof to === 'string' &&
          err instanceof SwitchboardError &&
          err.code === 'SB_ERR_UNKNOWN_RECIPIENT'
        ) {
          print(`  #${short} no user ${to}: trying the topic ${to}`, false)
          send({ kind: 'topic', topic: to }, text)
          return
        }
        print(`  #${short} ✗ ${refusalText(err)}`)
      },
    )
  }

  const sendFile = async (to: Target, path: string, text: string): Promise<void> => {
    const source = await fileSource(resolve(path))
    let last = 0
    const r = await client.sendFile(to, source, {
      text,
      onProgress: (p) => {
        const now = Date.now()
        if (now - last < 100 && p.bytes < p.total) return
        last = now
        out.write(`\r  upload ${source.name} ${progressBar(p.bytes, p.total)}`)
      },
    })
    out.write('\n')
    print(`  ✓ file ${source.name} (${bytes(source.size)}) sent to ${describeTarget(to)}: id ${r.fileId ?? '?'}`)
  }

  const download = async (fileId: string, dir: string): Promise<void> => {
    let last = 0
    const d = await downloadToFile(client, fileId, resolve(dir), (p) => {
      const now = Date.now()
      if (now - last < 100 && p.bytes < p.total) return
      last = now
      out.write(`\r  download ${progressBar(p.bytes, p.total)}`)
    })
    out.write('\n')
    print(`  ✓ saved ${d.file.name} (${bytes(d.file.size)}, SHA-256 checked) to ${d.path}`)
  }

  const fileError = (err: unknown): void => {
    if (err instanceof SwitchboardError && err.code === 'SB_ERR_UNSUPPORTED')
      print(`! this server does not support file transfer (${err.message})`, false)
    else fail(err)
  }

  const quit = async (): Promise<void> => {
    if (quitting) return
    quitting = true
    print('* bye', false)
    rl.close()
  }

  const handle = async (line: string): Promise<void> => {
    if (echo.muted) {
      echo.muted = false
      out.write('\n')
    }
    if (waitingFor?.kind === 'secret') return passwordStep(waitingFor, line)
    const input = line.trim()
    if (waitingFor !== undefined) {
      const target = waitingFor.target
      waitingFor = undefined
      if (input !== '') send(target, input, true)
      else print('  (nothing sent)', false)
      return
    }
    if (input === '') return
    if (request !== undefined && /^(y|yes|n|no)$/i.test(input)) {
      const r = request
      request = undefined
      if (/^y/i.test(input)) client.accept(r.id)
      else {
        client.decline(r.id)
        print(`* declined ${r.peer}'s conversation`, false)
      }
      return
    }
    // 004's words
    if (input === '>>exit<<') return quit()
    if (input.startsWith('>>chname<<')) {
      const newName = input.slice('>>chname<<'.length).trim().split(/\s+/)[0] ?? ''
      return client.rename(newName).then((n) => print(`* you are now ${n}`, false), fail)
    }
    if (input.startsWith('>>sendfile<<')) {
      const [path = '', ...text] = input.slice('>>sendfile<<'.length).trim().split(/\s+/)
      if (path === '') return print('usage: >>sendfile<< PATH [TEXT]', false)
      return sendFile({ kind: 'all' }, path, text.join(' ')).catch(fileError)
    }
    // 003's words
    if (input === 'refresh') return showInbox()
    if (input.startsWith('@') && input.length > 1) {
      const [target = '', ...text] = input.slice(1).split(/\s+/)
      if (text.length === 0) {
        waitingFor = { kind: 'mail', target }
        setPrompt()
        return
      }
      return send(target, text.join(' '), true)
    }
    if (input.startsWith('!') && input.length > 1) return subscribe(input.slice(1).trim())
    if (input.startsWith('#') && input.length > 1 && !/\s/.test(input)) return talk(input.slice(1))
    if (!input.startsWith('/')) {
      if (conversation !== undefined) {
        client.say(conversation.id, input)
        print(`[${hhmmss(Date.now())}] you ⇄ ${conversation.peer}: ${input}`)
        return
      }
      return send({ kind: 'all' }, input)
    }
    const [cmd = '', ...args] = input.split(/\s+/)
    const rest = input.slice(cmd.length).trim()
    switch (cmd.toLowerCase()) {
      case '/help':
      case '/?':
        return print(HELP, false)
      case '/quit':
      case '/exit':
      case '/q':
        return quit()
      case '/msg':
      case '/m': {
        const [to = '', ...text] = args
        if (to === '' || text.length === 0) return print('usage: /msg NAME TEXT', false)
        return send(to, text.join(' '))
      }
      case '/all':
        if (rest === '') return print('usage: /all TEXT', false)
        return send({ kind: 'all' }, rest)
      case '/pub': {
        const [topic = '', ...text] = args
        if (topic === '' || text.length === 0) return print('usage: /pub TOPIC TEXT', false)
        return send({ kind: 'topic', topic }, text.join(' '))
      }
      case '/who': {
        const users = await client.who().catch((e: unknown) => (fail(e), undefined))
        if (users === undefined) return
        return print(
          `online (${users.length}):\n` +
            users
              .map(
                (u) =>
                  `  ${u.name.padEnd(20)} #${u.id}  via ${u.protocol}, since ${hhmmss(u.since)}${u.id === client.id ? '  (you)' : ''}`,
              )
              .join('\n'),
          false,
        )
      }
      case '/whoami':
        return print(`you are ${client.name} #${client.id} on ${server}`, false)
      case '/seen': {
        if (args[0] === undefined) return print('usage: /seen NAME', false)
        const r = await client.lastSeen(args[0]).catch((e: unknown) => (fail(e), undefined))
        if (r === undefined) return
        const u = r.user
        return print(
          r.online
            ? `${u.name} #${u.id} is online via ${u.protocol}, last active ${hhmmss(u.lastSeen)}`
            : u.lastSeen > 0
              ? `${u.name} #${u.id} was last seen ${new Date(u.lastSeen).toLocaleString()}`
              : `${u.name} #${u.id} has not been seen yet`,
          false,
        )
      }
      case '/rename':
      case '/nick':
        if (args[0] === undefined) return print('usage: /rename NAME', false)
        return client.rename(args[0]).then((n) => print(`* you are now ${n}`, false), fail)
      case '/subscribe':
      case '/sub':
        if (args[0] === undefined) return print('usage: /subscribe TOPIC', false)
        return subscribe(args[0])
      case '/unsubscribe':
      case '/unsub':
        if (args[0] === undefined) return print('usage: /unsubscribe TOPIC', false)
        return client
          .unsubscribe(args[0])
          .then((was) => print(was ? `* unsubscribed from ${args[0]}` : `* you were not subscribed to ${args[0]}`, false), fail)
      case '/topics': {
        const [all, mine] = await Promise.all([client.topics(), client.subscriptions()]).catch(
          (e: unknown) => (fail(e), [undefined, undefined]),
        )
        if (all === undefined || mine === undefined) return
        if (all.length === 0) return print('(no topics yet: /subscribe TOPIC creates one)', false)
        return print(
          `topics:\n` +
            all
              .map(
                (x) => `  ${x.topic.padEnd(20)} ${x.subscribers} subscriber(s)${mine.includes(x.topic) ? '  (subscribed)' : ''}`,
              )
              .join('\n'),
          false,
        )
      }
      case '/subscriptions':
        return client
          .subscriptions()
          .then((s) => print(s.length ? `subscribed to: ${s.join(', ')}` : '(no subscriptions)', false), fail)
      case '/inbox':
      case '/refresh':
        return showInbox()
      case '/talk':
        if (args[0] === undefined) return print('usage: /talk NAME', false)
        return talk(args[0])
      case '/close':
        if (conversation === undefined) return print('(no open conversation)', false)
        client.closeConversation(conversation.id)
        return
      case '/send-file':
      case '/sendfile': {
        let to: Target = { kind: 'all' }
        let a = args
        if (a[0]?.startsWith('@')) {
          const t = a[0].slice(1)
          to = t.startsWith('topic:') ? { kind: 'topic', topic: t.slice(6) } : t
          a = a.slice(1)
        }
        const [path, ...text] = a
        if (path === undefined) return print('usage: /send-file [@NAME|@topic:TOPIC] PATH [TEXT]', false)
        return sendFile(to, path, text.join(' ')).catch(fileError)
      }
      case '/download':
        if (args[0] === undefined) return print('usage: /download ID [DIR]', false)
        return download(args[0], args[1] ?? '.').catch(fileError)
      case '/block':
        if (args[0] === undefined) return print('usage: /block NAME', false)
        return client.block(args[0]).then((u) => print(`* blocked ${u.name}`, false), fail)
      case '/unblock':
        if (args[0] === undefined) return print('usage: /unblock NAME', false)
        return client.unblock(args[0]).then((u) => print(`* unblocked ${u.name}`, false), fail)
      case '/history':
        if (args[0] !== undefined) return serverHistory(args[0])
        return print(history.length ? `history of this session:\n${history.join('\n')}` : '(nothing yet)', false)
      case '/devices':
        return showDevices()
      case '/revoke':
        if (args[0] === undefined || !/^\d+$/.test(args[0])) return print('usage: /revoke ID (the ids are in /devices)', false)
        return client.revokeDevice(Number(args[0])).then(() => print(`* device ${args[0]} revoked`, false), fail)
      case '/password':
        waitingFor = { kind: 'secret', step: 'current' }
        return
      default:
        return print(`unknown command ${cmd}: /help lists them`, false)
    }
  }

  /** /history NAME: the server's history with NAME (or a topic), oldest first. */
  const serverHistory = async (target: string): Promise<void> => {
    const w = target.startsWith('topic:') ? { topic: target.slice(6) } : target
    const page = await client.history({ with: w, limit: 20 }).catch((e: unknown) => (fail(e), undefined))
    if (page === undefined) return
    if (page.messages.length === 0) return print(`(no history with ${target})`, false)
    if (typeof w === 'string') {
      const u = await client.lastSeen(w).catch(() => undefined)
      if (u !== undefined) names.set(u.user.id, u.user.name)
    }
    const lines = historyLines(page.messages, client.id, names)
    print(
      `history with ${target}${page.more ? ' (the last 20; switchboard history has more)' : ''}:\n` +
        lines.map((l) => '  ' + l).join('\n'),
      false,
    )
  }

  const showDevices = async (): Promise<void> => {
    const list = await client.devices().catch((e: unknown) => (fail(e), undefined))
    if (list === undefined) return
    print(
      `your devices (${list.length}):\n` +
        list
          .map(
            (d) =>
              `  ${String(d.id).padStart(4)}  ${d.label.padEnd(10)} since ${dateTime(d.createdAt)}  ` +
              (d.online ? 'online' : d.lastSeen !== null ? `last seen ${dateTime(d.lastSeen)}` : 'never used') +
              (d.current ? '  (this one)' : ''),
          )
          .join('\n'),
      false,
    )
  }

  /** One answer of the /password dialogue; the last one sets (or clears) the password. */
  const passwordStep = async (
    w: { step: 'current' | 'new' | 'again'; current?: string; next?: string },
    line: string,
  ): Promise<void> => {
    if (w.step === 'current') {
      waitingFor = { kind: 'secret', step: 'new', current: line }
      return
    }
    if (w.step === 'new' && line !== '') {
      waitingFor = { kind: 'secret', step: 'again', current: w.current ?? '', next: line }
      return
    }
    waitingFor = undefined
    if (w.step === 'again' && line !== w.next) return print('! the two new passwords differ; nothing changed', false)
    const next = w.step === 'new' ? null : line
    const current = w.current === '' ? undefined : w.current
    return client
      .setPassword(next, current)
      .then(
        () =>
          print(
            next === null ? '* password cleared' : `* password set: switchboard login ${client.name} makes new devices with it`,
            false,
          ),
        fail,
      )
  }

  const subscribe = (topic: string): Promise<void> =>
    client
      .subscribe(topic)
      .then((isNew) => print(isNew ? `* subscribed to ${topic}` : `* already subscribed to ${topic}`, false), fail)

  const talk = (peer: string): Promise<void> =>
    client
      .requestConversation(peer)
      .then(() => print(`* asked ${peer} for a direct conversation; waiting for the answer`, false), fail)

  const showInbox = (): void => {
    const mail = unreadMail.splice(0)
    if (request !== undefined) print(`* ${request.peer} asks for a direct conversation: answer y or n`, false)
    if (mail.length === 0) return print('(no new mail)', false)
    print(`mail since you last looked (${mail.length}):\n` + mail.map((m) => '  ' + show(m)).join('\n'), false)
  }

  print(`connected to ${server} as ${client.name} (#${client.id}). Plain text goes to the room; /help lists the commands.`, false)
  const done = new Promise<void>((res) => rl.once('close', () => res()))
  // Lines are handled one after another, so a prompt answer (y/n, a mail text) follows its question.
  let chain = Promise.resolve()
  rl.on('line', (line) => {
    chain = chain
      .then(() => handle(line))
      .catch(fail)
      .then(() => {
        if (quitting) return
        setPrompt()
        rl.prompt(true)
        // The prompt is out; what is typed for a password is not echoed.
        echo.muted = waitingFor?.kind === 'secret'
      })
  })
  setPrompt()
  rl.prompt()
  await done
  quitting = true
  await chain.catch(() => undefined)
  await client.close(1000)
  return endedByServer ? ChatExit.ENDED_BY_SERVER : ChatExit.QUIT
}
