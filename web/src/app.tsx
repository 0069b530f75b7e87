/**
 * The views. They draw ChatModel's state and call its methods; all protocol work is in chat.ts.
 * `data-testid` attributes are what test/integration/web.test.ts drives, so keep them stable.
 */
import { useEffect, useReducer, useRef, useState } from 'preact/hooks'
import type { JSX } from 'preact'
import {
  ChatModel,
  describeKey,
  ROOM,
  STATUS_LABEL,
  TICKS,
  topicKey,
  userKey,
  type ChatMessage,
  type PersonInfo,
} from './chat.js'
import { pieces } from './format.js'
import { lastLogin } from './storage.js'

function useModel(model: ChatModel): void {
  const [, bump] = useReducer((n: number, _: unknown) => n + 1, 0)
  useEffect(() => model.subscribe(() => bump(undefined)), [model])
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function formatTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

// Icons are inline SVG, not emoji: a machine without an emoji font (headless Chromium on a server) shows boxes.
function FileIcon(): JSX.Element {
  return (
    <svg
      class="file-icon"
      viewBox="0 0 24 24"
      width="26"
      height="26"
      aria-hidden="true"
      fill="none"
      stroke="currentColor"
      stroke-width="1.6"
      stroke-linejoin="round"
    >
      <path d="M6 2.8h8l4.2 4.2v14.2H6z" />
      <path d="M14 2.8V7h4.2M8.8 12h6.4M8.8 15.2h6.4M8.8 18.4h4" />
    </svg>
  )
}

function ClipIcon(): JSX.Element {
  return (
    <svg
      viewBox="0 0 24 24"
      width="22"
      height="22"
      aria-hidden="true"
      fill="none"
      stroke="currentColor"
      stroke-width="1.8"
      stroke-linecap="round"
    >
      <path d="M20 11.5l-7.8 7.8a5 5 0 0 1-7.1-7.1l8.2-8.2a3.4 3.4 0 0 1 4.8 4.8l-8.1 8.1a1.7 1.7 0 0 1-2.4-2.4l7.4-7.4" />
    </svg>
  )
}

// ------------------------------------------------------------------ login

const utf8 = new TextEncoder()

/** UTF-8 bytes of a name as the server counts them (NFC, trimmed). */
function nameBytes(name: string): number {
  return utf8.encode(name.trim().normalize('NFC')).length
}

function Login({ model }: { model: ChatModel }): JSX.Element {
  const remembered = lastLogin(model.server)
  const [name, setName] = useState('')
  const [password, setPassword] = useState('')
  const [other, setOther] = useState(remembered === undefined)
  useEffect(() => void model.loadLimits(), [model])
  const busy = model.state === 'connecting'
  const max = model.limits.maxNameBytes
  const bytes = nameBytes(name)
  const tooLong = bytes > max
  const spaces = /\s/.test(name.trim())
  const problem = tooLong
    ? `Too long: a name is at most ${max} bytes (letters outside A–Z take 2–4 each); this one is ${bytes}.`
    : spaces
      ? 'A name is one word: no spaces.'
      : undefined
  const pwShort = password !== '' && [...password].length < 8
  const submit = (e: Event): void => {
    e.preventDefault()
    if (name.trim() !== '' && problem === undefined && !pwShort) void model.login(name, password)
  }
  const withPassword = (): void => {
    if (name.trim() !== '' && problem === undefined && password !== '') void model.loginWithPassword(name, password)
  }
  return (
    <main class="login">
      <div class="login-card">
        <h1>
          <span class="logo" aria-hidden="true">
            ⇄
          </span>{' '}
          Switchboard
        </h1>
        <p class="muted">Chat with people, the room and topics; send files. Your login is remembered in this browser.</p>
        {remembered && !other ? (
          <div class="stack">
            <button class="primary" data-testid="continue" disabled={busy} onClick={() => void model.login(remembered.name)}>
              Continue as {remembered.name}
            </button>
            <button class="link" onClick={() => setOther(true)}>
              Use another name
            </button>
          </div>
        ) : (
          <form class="stack" onSubmit={submit}>
            <label for="name">Your name</label>
            <input
              id="name"
              data-testid="name"
              autoComplete="username"
              autoFocus
              placeholder="e.g. alice"
              value={name}
              aria-invalid={problem !== undefined}
              aria-describedby="name-rule"
              onInput={(e) => setName(e.currentTarget.value)}
            />
            <p id="name-rule" class={`hint${problem ? ' bad' : ''}`} data-testid="name-rule" data-max={max}>
              {problem ?? `One word, at most ${max} bytes · ${bytes}/${max}`}
            </p>
            <label for="password">Password (optional)</label>
            <input
              id="password"
              type="password"
              data-testid="password"
              autoComplete="current-password"
              placeholder="at least 8 characters"
              value={password}
              aria-invalid={pwShort}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
            {pwShort && <p class="hint bad">A password has at least 8 characters.</p>}
            <button
              class="primary"
              type="submit"
              data-testid="login"
              disabled={busy || name.trim() === '' || problem !== undefined || pwShort}
            >
              {busy ? 'Connecting…' : 'Enter'}
            </button>
            <button
              type="button"
              data-testid="password-login"
              disabled={busy || name.trim() === '' || problem !== undefined || password === ''}
              onClick={withPassword}
            >
              Log in with password
            </button>
            <p class="hint">
              Enter: a new name is registered (with the password, if you give one); a name you used here before logs in with its
              remembered token. Log in with password: your name from another browser or device.
            </p>
          </form>
        )}
        {model.loginError && (
          <p class="error" role="alert" data-testid="login-error">
            {model.loginError}
          </p>
        )}
      </div>
    </main>
  )
}

// ------------------------------------------------------------------ sidebar

function Badge({ n }: { n: number | undefined }): JSX.Element | null {
  return n ? (
    <span class="badge" data-testid="unread">
      {n > 99 ? '99+' : n}
    </span>
  ) : null
}

function Sidebar({ model, onPick }: { model: ChatModel; onPick: () => void }): JSX.Element {
  const [to, setTo] = useState('')
  const [toError, setToError] = useState<string | undefined>(undefined)
  const [looking, setLooking] = useState(false)
  const [topic, setTopic] = useState('')
  const pick = (key: string): void => {
    model.open(key)
    onPick()
  }
  const onlineNames = new Set([...model.online.values()].map((u) => u.name))
  // People: who is online, then anyone we have talked with.
  const people = [...onlineNames]
  for (const k of Object.keys(model.convs)) {
    const d = describeKey(k)
    if (d.kind === 'user' && !onlineNames.has(d.name)) people.push(d.name)
  }
  const others = model.topics.filter((t) => !model.subscribed.includes(t.topic))
  const item = (key: string, label: JSX.Element | string, extra?: JSX.Element, testid?: string): JSX.Element => (
    <li key={key}>
      <button
        class={`conv${model.active === key ? ' active' : ''}`}
        data-testid={testid}
        data-key={key}
        onClick={() => pick(key)}
      >
        {label}
        <Badge n={model.unread[key]} />
      </button>
      {extra}
    </li>
  )
  return (
    <nav class="sidebar" aria-label="Conversations">
      {model.requests.length > 0 && (
        <section>
          <h2>Requests</h2>
          <ul class="requests">
            {model.requests.map((r) => (
              <li key={r.convId} class="request" data-testid="request">
                <span>
                  <b>{r.peer}</b> asks for a live chat
                </span>
                <span class="row">
                  <button
                    class="small primary"
                    data-testid="accept"
                    onClick={() => {
                      model.answer(r, true)
                      onPick()
                    }}
                  >
                    Accept
                  </button>
                  <button class="small" data-testid="decline" onClick={() => model.answer(r, false)}>
                    Decline
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section>
        <h2>Room</h2>
        <ul>{item(ROOM, <span class="label"># Everyone</span>, undefined, 'room')}</ul>
      </section>
      <section>
        <h2>
          People <span class="count">{model.online.size} online</span>
        </h2>
        <ul data-testid="people">
          {people.map((n) =>
            item(
              userKey(n),
              <span class="label">
                <span class={`dot${onlineNames.has(n) ? ' on' : ''}`} title={onlineNames.has(n) ? 'online' : 'offline'} />
                {n}
                {model.live[n] !== undefined && <span class="tag">live</span>}
              </span>,
              undefined,
              `person-${n}`,
            ),
          )}
          {people.length === 0 && <li class="empty">Nobody else is online yet.</li>}
        </ul>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault()
            if (to.trim() === '' || looking) return
            // The name is checked with the server first: no conversation opens for a name that does not exist.
            setLooking(true)
            void model.openPerson(to).then((err) => {
              setLooking(false)
              setToError(err)
              if (err === undefined) {
                setTo('')
                onPick()
              }
            })
          }}
        >
          <input
            placeholder="Message someone by name"
            data-testid="to-input"
            value={to}
            onInput={(e) => {
              setTo(e.currentTarget.value)
              setToError(undefined)
            }}
            aria-label="Message someone by name"
            aria-invalid={toError !== undefined}
          />
          {toError !== undefined && (
            <p class="field-error" role="alert" data-testid="to-error">
              {toError}
            </p>
          )}
        </form>
      </section>
      <section>
        <h2>Topics</h2>
        <ul data-testid="topics">
          {model.subscribed.map((t) =>
            item(
              topicKey(t),
              <span class="label">◆ {t}</span>,
              <button
                class="icon"
                title={`Unsubscribe from ${t}`}
                data-testid={`unsubscribe-${t}`}
                onClick={() => void model.unsubscribeTopic(t)}
              >
                ×
              </button>,
              `topic-${t}`,
            ),
          )}
          {others.map((t) => (
            <li key={t.topic} class="other-topic">
              <span class="label muted">◇ {t.topic}</span>
              <button class="small" onClick={() => void model.subscribeTopic(t.topic)}>
                Subscribe
              </button>
            </li>
          ))}
        </ul>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault()
            void model.subscribeTopic(topic).then(onPick)
            setTopic('')
          }}
        >
          <input
            placeholder="Subscribe to a topic"
            data-testid="topic-input"
            value={topic}
            onInput={(e) => setTopic(e.currentTarget.value)}
            aria-label="Subscribe to a topic"
          />
        </form>
      </section>
    </nav>
  )
}

// ------------------------------------------------------------------ messages

function Progress({ p }: { p: NonNullable<ChatMessage['progress']> }): JSX.Element {
  const pct = p.total > 0 ? Math.round((100 * p.bytes) / p.total) : 100
  return (
    <div class="progress" data-testid="progress" role="progressbar" aria-valuenow={pct} aria-valuemin={0} aria-valuemax={100}>
      <div class="bar" style={{ width: `${pct}%` }} />
      <span>
        {p.dir === 'up' ? 'Uploading' : 'Downloading'} {pct}% · {formatBytes(p.bytes)} of {formatBytes(p.total)}
      </span>
    </div>
  )
}

/** A message's text with its links and emphasis; every piece is text that Preact escapes, never HTML. */
function RichText({ text }: { text: string }): JSX.Element {
  return (
    <div class="text">
      {pieces(text).map((p, i) => {
        switch (p.kind) {
          case 'link':
            return (
              <a key={i} href={p.href} target="_blank" rel="noopener noreferrer nofollow ugc">
                {p.text}
              </a>
            )
          case 'bold':
            return <strong key={i}>{p.text}</strong>
          case 'italic':
            return <em key={i}>{p.text}</em>
          case 'code':
            return <code key={i}>{p.text}</code>
          default:
            return p.text
        }
      })}
    </div>
  )
}

/** ✓ accepted or stored, ✓✓ delivered, ✓✓ coloured when read; a clock while sending; the words on hover. */
function Ticks({ m }: { m: ChatMessage }): JSX.Element {
  const status = m.status ?? 'sending'
  const n = TICKS[status]
  const words = STATUS_LABEL[status] + (m.detail && status !== 'failed' ? ` · ${m.detail}` : '')
  return (
    <span class={`status ${status}`} data-testid="status" data-status={status} title={words} aria-label={words} role="img">
      {status === 'failed' ? (
        <span class="failed-text">{STATUS_LABEL.failed}</span>
      ) : n === 0 ? (
        <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.6">
          <circle cx="8" cy="8" r="6" />
          <path d="M8 4.6V8l2.4 1.6" stroke-linecap="round" />
        </svg>
      ) : (
        <svg
          viewBox={n === 2 ? '0 0 22 16' : '0 0 16 16'}
          width={n === 2 ? 21 : 15}
          height="15"
          aria-hidden="true"
          fill="none"
          stroke="currentColor"
          stroke-width="2"
          stroke-linecap="round"
          stroke-linejoin="round"
        >
          <path d="M1.8 8.6l3.7 3.7L13.4 4.2" />
          {n === 2 && <path d="M10.2 12.3L18.3 4.2" />}
        </svg>
      )}
    </span>
  )
}

function Message({ m, model }: { m: ChatMessage; model: ChatModel }): JSX.Element {
  if (m.dir === 'system')
    return (
      <li class="system" data-testid="system">
        {m.text}
      </li>
    )
  return (
    <li
      class={`msg ${m.dir}${m.live ? ' live' : ''}${m.status === 'failed' ? ' failed' : ''}`}
      data-testid={m.dir === 'in' ? 'msg-in' : 'msg-out'}
    >
      {m.dir === 'in' && <div class="from">{m.from}</div>}
      {m.file && (
        <div class="file" data-testid="file">
          <FileIcon />
          <span class="file-name">
            {m.file.name}
            <small>{formatBytes(m.file.size)}</small>
          </span>
          {m.file.fileId !== '' && !m.progress && (
            <button class="small" data-testid="download" onClick={() => void model.download(m)}>
              Download
            </button>
          )}
        </div>
      )}
      {m.progress && <Progress p={m.progress} />}
      {m.text !== '' && <RichText text={m.text} />}
      <div class="meta">
        {m.live && <span class="tag">live</span>}
        <time>{formatTime(m.ts)}</time>
        {m.status && <Ticks m={m} />}
      </div>
      {m.status === 'failed' && (
        <div class="failure" role="alert" data-testid="failure">
          <span>{m.detail ?? 'The server did not take it.'}</span>
          {m.file === undefined && (
            <button class="small" data-testid="retry" onClick={() => model.retry(m)}>
              Retry
            </button>
          )}
        </div>
      )}
    </li>
  )
}

/** The line under a person's name: online, or when last seen (their messages wait for them either way). */
function presenceLine(online: boolean, person: PersonInfo | undefined): string {
  if (online) return 'online'
  if (person?.exists === false) return 'no user by this name now (deleted or renamed): messages to it fail'
  const lastSeen = person?.lastSeen
  if (lastSeen === undefined) return 'offline — messages wait for them'
  if (lastSeen === 0) return 'offline, not seen yet — messages wait for them'
  const d = new Date(lastSeen)
  const when =
    Date.now() - lastSeen < 20 * 3600 * 1000 ? formatTime(lastSeen) : d.toLocaleDateString([], { day: 'numeric', month: 'short' })
  return `offline, last seen ${when} — messages wait for them`
}

function Conversation({ model, onBack }: { model: ChatModel; onBack: () => void }): JSX.Element {
  const key = model.active
  const d = describeKey(key)
  const list = model.convs[key] ?? []
  const [text, setText] = useState('')
  const fileInput = useRef<HTMLInputElement>(null)
  const end = useRef<HTMLLIElement>(null)
  useEffect(() => end.current?.scrollIntoView({ block: 'end' }), [list.length, key])
  const online = d.kind === 'user' && [...model.online.values()].some((u) => u.name === d.name)
  const subscribers = d.kind === 'topic' ? model.topics.find((t) => t.topic === d.name)?.subscribers : undefined
  const live = d.kind === 'user' ? model.live[d.name] : undefined
  const send = (e: Event): void => {
    e.preventDefault()
    model.sendText(text)
    setText('')
  }
  return (
    <section class="conversation" aria-label={`Conversation: ${d.name}`}>
      <header class="conv-head">
        <button class="icon back" onClick={onBack} aria-label="Back to conversations">
          ‹
        </button>
        <div class="title">
          <h2 data-testid="conv-title">{d.kind === 'topic' ? `◆ ${d.name}` : d.kind === 'room' ? '# Everyone' : d.name}</h2>
          <small class="muted">
            {d.kind === 'room' && 'Everyone online hears it; not stored for those away.'}
            {d.kind === 'topic' && `${subscribers ?? 0} subscriber(s)`}
            {d.kind === 'user' && <span data-testid="conv-presence">{presenceLine(online, model.people[d.name])}</span>}
          </small>
        </div>
        <div class="actions">
          {d.kind === 'user' && live === undefined && (
            <button
              class="small"
              data-testid="live"
              disabled={!online || model.pending[d.name] !== undefined}
              onClick={() => void model.requestLive(d.name)}
            >
              {model.pending[d.name] !== undefined ? 'Waiting…' : 'Live chat'}
            </button>
          )}
          {d.kind === 'user' && live !== undefined && (
            <button class="small" onClick={() => model.endLive(d.name)}>
              End live chat
            </button>
          )}
          {d.kind === 'topic' && (
            <button class="small" onClick={() => void model.unsubscribeTopic(d.name)}>
              Unsubscribe
            </button>
          )}
        </div>
      </header>
      <ul class="messages" data-testid="messages">
        {model.loadingHistory[model.active] && (
          <li class="system" data-testid="history-loading">
            Loading earlier messages…
          </li>
        )}
        {list.length === 0 && !model.loadingHistory[model.active] && <li class="system">No messages yet. Say hello.</li>}
        {list.map((m) => (
          <Message key={m.key} m={m} model={model} />
        ))}
        <li ref={end} class="end" aria-hidden="true" />
      </ul>
      <form class="composer" onSubmit={send}>
        <input
          type="file"
          ref={fileInput}
          data-testid="file-input"
          hidden
          onChange={(e) => {
            const f = e.currentTarget.files?.[0]
            if (f) void model.sendFile(f, text)
            setText('')
            e.currentTarget.value = ''
          }}
        />
        <button
          type="button"
          class="icon attach"
          title="Send a file"
          aria-label="Send a file"
          disabled={live !== undefined}
          onClick={() => fileInput.current?.click()}
        >
          <ClipIcon />
        </button>
        <input
          class="text-input"
          data-testid="compose"
          placeholder={live !== undefined ? `Live chat with ${d.name}…` : `Message ${d.kind === 'room' ? 'everyone' : d.name}`}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          autoComplete="off"
        />
        <button class="primary" type="submit" data-testid="send" disabled={text.trim() === ''}>
          Send
        </button>
      </form>
    </section>
  )
}

// ------------------------------------------------------------------ the page

const STATE_LABEL = {
  'signed-out': 'signed out',
  connecting: 'connecting…',
  online: 'online',
  reconnecting: 'reconnecting…',
  closed: 'disconnected',
}

// ------------------------------------------------------------------ password

function PasswordForm({ model, onDone }: { model: ChatModel; onDone: () => void }): JSX.Element {
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      await model.setPassword(next, current)
      model.say('Password saved: log in with it from another browser or device.')
      onDone()
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class="password-form stack" data-testid="password-form" onSubmit={(e) => void submit(e)}>
      <label for="pw-current">Current password (if you have one)</label>
      <input
        id="pw-current"
        type="password"
        autoComplete="current-password"
        data-testid="password-current"
        value={current}
        onInput={(e) => setCurrent(e.currentTarget.value)}
      />
      <label for="pw-new">New password</label>
      <input
        id="pw-new"
        type="password"
        autoComplete="new-password"
        data-testid="password-new"
        placeholder="at least 8 characters"
        value={next}
        onInput={(e) => setNext(e.currentTarget.value)}
      />
      {error && (
        <p class="error" role="alert" data-testid="password-error">
          {error}
        </p>
      )}
      <div class="row">
        <button class="primary small" type="submit" data-testid="password-save" disabled={busy || [...next].length < 8}>
          Save
        </button>
        <button class="small" type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  )
}

export function App({ model }: { model: ChatModel }): JSX.Element {
  useModel(model)
  // On a phone the list and the conversation take turns; on a wide screen both show.
  const [showList, setShowList] = useState(true)
  const [passwordOpen, setPasswordOpen] = useState(false)
  if (model.me === undefined) return <Login model={model} />
  const totalUnread = Object.values(model.unread).reduce((a, b) => a + b, 0)
  return (
    <div class={`shell ${showList ? 'list-view' : 'conv-view'}`}>
      <header class="top">
        <span class="brand">
          <span class="logo" aria-hidden="true">
            ⇄
          </span>{' '}
          Switchboard
        </span>
        <span class={`conn ${model.state}`} data-testid="conn" data-state={model.state} data-attempt={model.reconnectAttempt}>
          <span class="dot on" /> {STATE_LABEL[model.state]}
        </span>
        <span class="me" data-testid="me" title={totalUnread > 0 ? `${totalUnread} unread` : undefined}>
          {model.me.name}
          {totalUnread > 0 && <Badge n={totalUnread} />}
        </span>
        {model.state === 'closed' ? (
          <button class="small" onClick={() => void model.logout()}>
            Sign in again
          </button>
        ) : (
          <>
            <button class="small" data-testid="password-open" onClick={() => setPasswordOpen(!passwordOpen)}>
              Password
            </button>
            <button class="small" data-testid="logout" onClick={() => void model.logout()}>
              Log out
            </button>
          </>
        )}
      </header>
      {passwordOpen && <PasswordForm model={model} onDone={() => setPasswordOpen(false)} />}
      {model.banner && (
        <div class={`banner ${model.banner.tone}`} role="status" data-testid="banner">
          <span>{model.banner.text}</span>
          <button class="icon" aria-label="Dismiss" onClick={() => model.dismissBanner()}>
            ×
          </button>
        </div>
      )}
      <div class="body">
        <Sidebar model={model} onPick={() => setShowList(false)} />
        <Conversation model={model} onBack={() => setShowList(true)} />
      </div>
    </div>
  )
}
