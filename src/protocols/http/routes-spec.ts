/**
 * The one source of truth for the HTTP API: every route's method, path, parameters, body and responses
 * as JSON Schema. rest.ts registers fastify routes from this table (fastify's ajv validates every body and
 * parameter against it before a handler runs) and openapi.ts renders the same table as OpenAPI 3.1.
 *
 * The schemas stay in the subset that both ajv (draft-07, fastify's validator) and OpenAPI 3.1 (JSON
 * Schema 2020-12) read the same way: type (arrays for unions, so ajv never coerces a name into an id),
 * properties, required, additionalProperties, enum, minimum/maximum, minLength/maxLength, pattern, items.
 */
import { ErrorCodes } from '../../core/errors.js'
import { FIELD_LIST, KIND_NAMES, MESSAGE_KINDS } from '../../schema/message.js'

export type Schema = Record<string, unknown>

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface ResponseSpec {
  description: string
  /** A schema, or a `$ref` to a component ('#/components/schemas/Name'). */
  schema?: Schema
  /** Defaults to application/json. */
  contentType?: string
  headers?: Record<string, { description: string; schema: Schema }>
}

export interface RouteSpec {
  operationId: string
  method: Method
  /** fastify syntax (':param'); openapi.ts turns it into '{param}'. */
  url: string
  tag: string
  summary: string
  description?: string
  /**
   * 'bearer': Authorization: Bearer <token>; 'bearer-or-query': also ?token= (for EventSource, <a href>, WebSocket);
   * 'admin': the operator's --admin-token, as a bearer token or the password of HTTP Basic authentication;
   * 'bearer-once': a bearer token that is checked but starts no session (nor replaces the device's).
   */
  auth: 'none' | 'bearer' | 'bearer-or-query' | 'bearer-once' | 'admin'
  params?: Schema
  querystring?: Schema
  body?: Schema
  responses: Record<number, ResponseSpec>
  /** Problem statuses this route may answer with besides the common ones. */
  errors?: number[]
  /** Not registered by the generic REST loop (SSE, WebSocket, static pages register themselves). */
  custom?: boolean
}

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })

// ---------------------------------------------------------------- building blocks

const userId = { type: 'integer', minimum: 1, maximum: 0xfffffffe, description: 'A user id.' }
const nameField = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  description: 'A user name (NFC, no spaces, at most maxNameBytes UTF-8 bytes).',
}
const msgIdField = {
  type: 'integer',
  minimum: 1,
  maximum: Number.MAX_SAFE_INTEGER,
  description: "The sender's own id for the message, echoed in receipts.",
}
const seqField = {
  type: 'integer',
  minimum: 1,
  maximum: Number.MAX_SAFE_INTEGER,
  description: "A message's position in your queue.",
}
const base64Field = {
  type: 'string',
  pattern: '^[A-Za-z0-9+/]*={0,2}$',
  description: 'The body as base64, for bytes that are not UTF-8 text.',
}
const textField = { type: 'string', description: 'The body as UTF-8 text.' }
/** Bounded here so a huge one is refused before it is hashed; the server's own rule (8 characters to 256 UTF-8 bytes) answers 400 SB_ERR_PASSWORD_INVALID. */
const passwordField = {
  type: 'string',
  minLength: 1,
  maxLength: 1024,
  description: 'A password: at least 8 characters, at most 256 UTF-8 bytes.',
}
const labelField = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  description: 'What this device is called in the device list (e.g. "laptop browser"). Default: the protocol.',
}
const deviceId = { type: 'integer', minimum: 1, maximum: 0xfffffffe, description: "A device's id (GET /v1/devices)." }
const bodyOneOf = [{ required: ['text'] }, { required: ['base64'] }]

/** `to` of a message: an integer is a user id; a string is ALL, SERVER, #topic or a user name. */
export const recipientSchema: Schema = {
  type: ['integer', 'string'],
  minimum: 0,
  maximum: 0xffffffff,
  minLength: 1,
  maxLength: 256,
  description:
    'An integer user id, or a string: "ALL" (everyone online), "SERVER" (a text command), "#topic" (its subscribers), or a user name.',
}

const userRef: Schema = {
  type: ['integer', 'string'],
  minimum: 1,
  maximum: 0xfffffffe,
  minLength: 1,
  maxLength: 256,
  description: 'A user id (integer) or name (string).',
}

// ---------------------------------------------------------------- components

/** The Message component from the message schema (src/schema/message.ts), then the body's JSON forms. */
function messageSchema(): Schema {
  const properties: Record<string, Schema> = {}
  const required: string[] = []
  for (const [name, f] of FIELD_LIST) {
    if (!f.json) continue
    properties[name] =
      f.type === 'kind'
        ? {
            type: 'string',
            enum: [...KIND_NAMES],
            description: `${f.doc} ${KIND_NAMES.map((k) => `${k}: ${MESSAGE_KINDS[k].doc}`).join('; ')}.`,
          }
        : { type: f.type === 'str' ? 'string' : 'integer', description: f.doc }
    if (f.optional !== true) required.push(name)
  }
  properties.text = { type: 'string', description: 'The body as UTF-8 text.' }
  properties.base64 = { type: 'string', description: 'The body in base64, when it is not valid UTF-8.' }
  properties.receipt = ref('Receipt')
  return { type: 'object', required, additionalProperties: false, properties }
}

export const components: Record<string, Schema> = {
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details, with the stable error code of docs/errors.md.',
    required: ['type', 'title', 'status', 'detail', 'code'],
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      code: { type: 'string', enum: Object.keys(ErrorCodes) },
      limit: { type: 'string', description: 'The limit that was broken (maxTextBytes, bodyLimit, ratePerSecond…).' },
      instance: { type: 'string' },
      errors: {
        type: 'array',
        items: {
          type: 'object',
          required: ['in', 'path', 'message'],
          properties: { in: { type: 'string' }, path: { type: 'string' }, message: { type: 'string' } },
        },
      },
    },
  },
  Credentials: {
    type: 'object',
    required: ['id', 'name', 'device', 'token'],
    additionalProperties: false,
    properties: {
      id: userId,
      name: { type: 'string' },
      device: { ...deviceId, description: 'The device this token is (each token is one device of the user).' },
      token: {
        type: 'string',
        description:
          'The bearer token for every other call: "<id>.<secret>". Keep it: only a hash is kept, and without a password it is the only way back to this name.',
      },
    },
  },
  Device: {
    type: 'object',
    required: ['id', 'label', 'createdAt', 'online', 'current'],
    additionalProperties: false,
    properties: {
      id: deviceId,
      label: { type: 'string', description: 'What the device called itself when it was made (its protocol by default).' },
      createdAt: { type: 'integer', description: 'When it was made (registration or password login), ms since the epoch.' },
      lastSeen: { type: 'integer', description: 'When its last session ended, ms since the epoch; absent if none has yet.' },
      online: { type: 'boolean', description: 'A session of this device is open now.' },
      current: { type: 'boolean', description: 'This is the device whose token made the request.' },
    },
  },
  User: {
    type: 'object',
    required: ['id', 'name'],
    additionalProperties: false,
    properties: { id: userId, name: { type: 'string' } },
  },
  Presence: {
    type: 'object',
    required: ['id', 'name', 'protocol', 'since', 'lastSeen'],
    properties: {
      id: userId,
      name: { type: 'string' },
      protocol: { type: 'string', description: 'How the user is connected: native, http, http-sse, p001…' },
      since: { type: 'integer', description: 'Session start, ms since the epoch.' },
      lastSeen: { type: 'integer' },
      node: { type: 'string' },
      tokenless: {
        type: 'boolean',
        description:
          'Present (true) for a name without a token, from a legacy gateway: not authenticated, and removed after --legacy-identity-ttl without a login.',
      },
    },
  },
  Receipt: {
    type: 'object',
    required: ['msgId', 'status', 'statusText', 'recipient', 'recipientName', 'seq', 'at'],
    additionalProperties: false,
    properties: {
      msgId: { type: 'integer' },
      status: {
        type: 'integer',
        enum: [200, 202, 210, 300, 404, 410, 507],
        description:
          '200 delivered (acknowledged), 202 stored (recipient offline), 210 read, 300 not acknowledged within the ack timeout (still queued), 404 recipient deleted, 410 expired, 507 dropped (queue full).',
      },
      statusText: { type: 'string', enum: ['delivered', 'stored', 'read', 'not-yet', 'deleted', 'expired', 'dropped'] },
      recipient: { type: 'integer' },
      recipientName: { type: 'string' },
      seq: { type: 'integer' },
      at: { type: 'integer' },
      topic: { type: 'string' },
      ackSeq: { type: 'integer', description: 'Present when the receipt waited in your queue: acknowledge this seq.' },
    },
  },
  Message: messageSchema(),
  SendResult: {
    type: 'object',
    required: ['msgId', 'status', 'seq', 'recipients'],
    additionalProperties: false,
    properties: {
      msgId: { type: 'integer', description: 'Yours, or one the server chose when you asked for a receipt without giving one.' },
      status: { type: 'string', enum: ['delivered', 'queued', 'stored', 'scheduled', 'duplicate'] },
      seq: { type: 'integer' },
      recipients: { type: 'integer' },
      receipt: ref('Receipt'),
      receiptPending: {
        type: 'boolean',
        description: 'wait=receipt timed out before the first receipt; fetch it later from /v1/receipts/{msgId} or the events.',
      },
    },
  },
  Event: {
    type: 'object',
    required: ['id', 'type', 'data'],
    additionalProperties: false,
    properties: {
      id: { type: 'integer', description: 'Increasing per session; pass the last one you handled as `after`.' },
      type: {
        type: 'string',
        enum: ['message', 'receipt', 'notice', 'presence', 'rename', 'conversation', 'read', 'closed'],
      },
      data: {
        type: 'object',
        description:
          'message: a Message; receipt: a Receipt; notice: {code,text}; presence: {id,name,online,protocol,at}; rename: {id,name,oldName}; conversation: {event,convId,peer,expiresAt?,reason?,text?}; read: {seq,at} (another of your devices marked your message `seq` read); closed: {reason,text}.',
      },
    },
  },
  Events: {
    type: 'object',
    required: ['events', 'dropped', 'next'],
    additionalProperties: false,
    properties: {
      events: { type: 'array', items: ref('Event') },
      dropped: {
        type: 'integer',
        description: 'Events dropped (oldest first) since your last call because the per-session buffer was full.',
      },
      next: { type: 'integer', description: 'The id to pass as `after` next time.' },
    },
  },
  Topic: {
    type: 'object',
    required: ['topic', 'subscribers'],
    additionalProperties: false,
    properties: { topic: { type: 'string' }, subscribers: { type: 'integer' } },
  },
  Limits: {
    type: 'object',
    required: ['maxNameBytes', 'maxTopicBytes', 'maxTextBytes', 'maxFileBytes', 'maxFrameBytes'],
    properties: {
      maxNameBytes: { type: 'integer', description: 'Longest user name, in UTF-8 bytes (after NFC).' },
      maxTopicBytes: { type: 'integer', description: 'Longest topic name, in UTF-8 bytes.' },
      maxTextBytes: { type: 'integer', description: 'Longest text message, in UTF-8 bytes.' },
      maxFileBytes: { type: 'integer', description: 'Largest file.' },
      maxFrameBytes: { type: 'integer', description: 'Largest native-protocol frame (WebSocket message).' },
    },
  },
  AdminSnapshot: {
    type: 'object',
    required: ['at', 'metrics', 'online', 'queues', 'gateways'],
    properties: {
      at: { type: 'integer', description: 'When the snapshot was taken (ms since the epoch).' },
      metrics: {
        type: 'array',
        description: "prom-client's JSON form of the /metrics registry: name, help, type, values (each with labels and value).",
        items: { type: 'object' },
      },
      online: {
        type: 'array',
        description: 'Sessions on this node.',
        items: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            name: { type: 'string' },
            protocol: { type: 'string' },
            since: { type: 'integer' },
            queued: { type: 'integer' },
            queuedBytes: { type: 'integer' },
          },
        },
      },
      queues: {
        type: 'array',
        description: 'The largest queues of the users online on this node, largest first (at most 10).',
        items: {
          type: 'object',
          properties: { name: { type: 'string' }, count: { type: 'integer' }, bytes: { type: 'integer' } },
        },
      },
      gateways: {
        type: 'array',
        description: 'Every gateway of this server and the connections it has open.',
        items: { type: 'object', properties: { name: { type: 'string' }, connections: { type: 'integer' } } },
      },
    },
  },
  Health: {
    type: 'object',
    required: ['status', 'store'],
    properties: {
      status: { type: 'string', enum: ['ok', 'fail'] },
      store: { type: 'string', enum: ['ok', 'fail', 'full', 'closing'] },
      storeKind: { type: 'string' },
      online: { type: 'integer' },
      uptimeMs: { type: 'integer' },
      detail: { type: 'string' },
    },
  },
}

// ---------------------------------------------------------------- routes

const json = (description: string, schema: Schema): ResponseSpec => ({ description, schema })
const noContent: ResponseSpec = { description: 'Done.' }
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties,
})

export const routes: RouteSpec[] = [
  // Session ------------------------------------------------------------
  {
    operationId: 'register',
    method: 'POST',
    url: '/v1/register',
    tag: 'session',
    summary: 'Register a new name',
    description:
      'Creates the user, its first device and a polling session. The answer carries the token ("<id>.<secret>") for every other call; only a hash is kept, so it cannot be shown again. With a `password`, the name can also be logged in from elsewhere (POST /v1/login with name and password), each such login a new device.',
    auth: 'none',
    body: obj({ name: nameField, password: passwordField, label: labelField }, ['name']),
    responses: { 201: json('Registered.', ref('Credentials')) },
    errors: [409, 413],
  },
  {
    operationId: 'login',
    method: 'POST',
    url: '/v1/login',
    tag: 'session',
    summary: 'Come back to a name with its token, or log in with a name and password (a new device)',
    description:
      'With a token: checks it and starts a polling session of its device. Give the full token "<id>.<secret>" alone, or the secret with `id` or `name`. Not needed before other calls: any call with a valid bearer token starts the session itself. One session per device: this replaces a live session of the same token on any protocol; the user\'s other devices stay.\n\nWith `name` and `password`: a new device of that user, starting at the live end (what came before is in GET /v1/history), with its own token, returned once; no session starts until the token is used. A wrong password and an unknown name get the same 401. Failed attempts are limited per name and per client address: past the limit, 429 with Retry-After.',
    auth: 'none',
    body: {
      type: 'object',
      additionalProperties: false,
      oneOf: [{ required: ['token'] }, { required: ['name', 'password'] }],
      properties: {
        token: { type: 'string', minLength: 1, maxLength: 512 },
        id: userId,
        name: nameField,
        password: passwordField,
        label: labelField,
      },
    },
    responses: { 200: json('Logged in.', ref('Credentials')) },
    errors: [401, 429],
  },
  {
    operationId: 'whoami',
    method: 'GET',
    url: '/v1/session',
    tag: 'session',
    summary: 'Who am I: the current session',
    auth: 'bearer',
    responses: { 200: json('The session.', ref('Presence')) },
  },
  {
    operationId: 'endSession',
    method: 'DELETE',
    url: '/v1/session',
    tag: 'session',
    summary: 'End the session (log out); the user and its queue stay',
    auth: 'bearer',
    responses: { 204: noContent },
  },
  {
    operationId: 'deleteAccount',
    method: 'DELETE',
    url: '/v1/account',
    tag: 'session',
    summary: 'Delete the account: the name is released and its queue dropped',
    auth: 'bearer',
    responses: { 204: noContent },
  },
  {
    operationId: 'rename',
    method: 'POST',
    url: '/v1/rename',
    tag: 'session',
    summary: 'Take a new name',
    auth: 'bearer',
    body: obj({ name: nameField }),
    responses: { 200: json('Renamed.', ref('User')) },
    errors: [409, 413],
  },
  {
    operationId: 'setPassword',
    method: 'PUT',
    url: '/v1/password',
    tag: 'session',
    summary: 'Set, change or remove (null) the password',
    description:
      'Setting the first password needs only the token; changing or removing one needs the `current` password too (a wrong one is 401, and counts against the failed-login limit). Devices already logged in stay.',
    auth: 'bearer-once',
    body: obj({ password: { ...passwordField, type: ['string', 'null'] }, current: passwordField }, ['password']),
    responses: { 204: noContent },
    errors: [403],
  },
  {
    operationId: 'devices',
    method: 'GET',
    url: '/v1/devices',
    tag: 'session',
    summary: 'Your devices: each token, from registration or a password login',
    auth: 'bearer-once',
    responses: { 200: json('Devices, oldest first.', obj({ devices: { type: 'array', items: ref('Device') } })) },
  },
  {
    operationId: 'revokeDevice',
    method: 'DELETE',
    url: '/v1/devices/:id',
    tag: 'session',
    summary: 'Revoke a device: its token is refused from now on, and its open sessions end',
    description:
      'Its SSE stream gets `closing` with reason "revoked", its long polls answer 401, and any call with its token is 401. Revoking the device making the request is allowed (a log-out that also forgets the token).',
    auth: 'bearer-once',
    params: obj({ id: deviceId }),
    responses: { 204: noContent },
    errors: [404],
  },

  // Messages -------------------------------------------------------------
  {
    operationId: 'send',
    method: 'POST',
    url: '/v1/messages',
    tag: 'messages',
    summary: 'Send a message to a user, ALL, a #topic or SERVER',
    description:
      'A direct or topic message is durable (fsynced) when this answers. With `receipt: true` you get receipts (stored / delivered / not-yet…) as events; with `?wait=receipt` the answer waits for the first one (up to `timeout` seconds). If you ask for a receipt without a msgId the server picks one and returns it.',
    auth: 'bearer',
    querystring: {
      type: 'object',
      properties: {
        wait: {
          type: 'string',
          enum: ['none', 'receipt'],
          description: 'receipt: hold the answer until the first receipt arrives (implies receipt: true).',
        },
        timeout: { type: 'integer', minimum: 1, maximum: 60, default: 30, description: 'Seconds to wait for the receipt.' },
      },
    },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['to'],
      oneOf: bodyOneOf,
      properties: {
        to: recipientSchema,
        text: textField,
        base64: base64Field,
        msgId: msgIdField,
        receipt: { type: 'boolean', description: 'Ask for receipts: 202 stored, 200 delivered, 300 not yet…' },
        readReceipt: { type: 'boolean', description: 'Ask for a 210 read receipt when the recipient marks it read.' },
        idempotent: { type: 'boolean', description: 'Make (you, msgId) a dedupe key: a retry is stored and delivered once.' },
        transient: {
          type: 'boolean',
          description:
            "Live only (MQTT's QoS 0): handed to the recipient's online sessions (as a message event, flags 16), never stored, no receipt; 409 SB_ERR_OFFLINE when none is online. A direct message only.",
        },
        ttlMs: {
          type: 'integer',
          minimum: 0,
          maximum: 0xffffffff,
          description: 'Drop the message (410 receipt) if not taken within this.',
        },
        notBefore: {
          type: 'integer',
          minimum: 0,
          maximum: Number.MAX_SAFE_INTEGER,
          description: 'ms since the epoch: hold the message until then.',
        },
      },
    },
    responses: { 200: json('Accepted.', ref('SendResult')) },
    errors: [404, 409, 413, 507],
  },
  {
    operationId: 'poll',
    method: 'GET',
    url: '/v1/messages',
    tag: 'messages',
    summary: 'Take queued messages (long poll)',
    description:
      'Returns the oldest queued messages beyond what this session has been handed. mode=take removes them (at most once); mode=peek leaves them until POST /v1/ack (at least once). With wait=N it answers as soon as something arrives, or after N seconds with an empty list.',
    auth: 'bearer',
    querystring: {
      type: 'object',
      properties: {
        wait: { type: 'integer', minimum: 0, maximum: 60, default: 0, description: 'Seconds to wait for a message.' },
        max: { type: 'integer', minimum: 1, maximum: 256, default: 100 },
        mode: { type: 'string', enum: ['take', 'peek'], default: 'take' },
      },
    },
    responses: { 200: json('Messages, oldest first (maybe none).', obj({ messages: { type: 'array', items: ref('Message') } })) },
    errors: [409],
  },
  {
    operationId: 'ack',
    method: 'POST',
    url: '/v1/ack',
    tag: 'messages',
    summary: 'Acknowledge messages (removes them; senders get 200)',
    auth: 'bearer',
    body: {
      type: 'object',
      additionalProperties: false,
      oneOf: [{ required: ['seq'] }, { required: ['seqs'] }],
      properties: { seq: seqField, seqs: { type: 'array', items: seqField, minItems: 1, maxItems: 1000 } },
    },
    responses: {
      200: json(
        'Which seqs were removed, and which were not (or no longer) queued.',
        obj({ acked: { type: 'array', items: { type: 'integer' } }, unknown: { type: 'array', items: { type: 'integer' } } }),
      ),
    },
  },
  {
    operationId: 'markRead',
    method: 'POST',
    url: '/v1/read',
    tag: 'messages',
    summary: 'Mark a message read (sends a 210 read receipt if the sender asked)',
    description: 'The message must have been handed to this session and not acknowledged yet (peek mode or the stream).',
    auth: 'bearer',
    body: obj({ seq: seqField }),
    responses: { 204: noContent },
    errors: [404],
  },
  {
    operationId: 'history',
    method: 'GET',
    url: '/v1/history',
    tag: 'messages',
    summary: 'Your history, newest first: with one user, of one #topic, or everything',
    description:
      'The messages the server keeps for you (--retention), in both directions: what you received, and what you sent from any of your devices (flag 8, a sent copy: `from` is you and `peer` is whom it went to). Page back with `before` = the smallest seq of the last page while `more` is true. Reading history acknowledges nothing and starts no session.',
    auth: 'bearer-once',
    querystring: {
      type: 'object',
      properties: {
        with: {
          type: 'string',
          minLength: 1,
          maxLength: 257,
          description: 'A user name, or "#topic" (%23topic in a URL). Without it: everything.',
        },
        before: { ...seqField, description: 'Only messages with a seq below this one.' },
        limit: { type: 'integer', minimum: 1, maximum: 256, default: 50 },
      },
    },
    responses: {
      200: json(
        'A page, newest first.',
        obj({
          messages: { type: 'array', items: ref('Message') },
          more: { type: 'boolean', description: 'Older messages remain: ask again with `before`.' },
        }),
      ),
    },
    errors: [404],
  },
  {
    operationId: 'receipts',
    method: 'GET',
    url: '/v1/receipts/:msgId',
    tag: 'messages',
    summary: 'Receipts this session received for one of its messages',
    description: 'The last receipts of the last 1024 msgIds are kept per session; an empty list means none came yet.',
    auth: 'bearer',
    params: obj({ msgId: msgIdField }),
    responses: {
      200: json(
        'Receipts, oldest first.',
        obj({ msgId: { type: 'integer' }, receipts: { type: 'array', items: ref('Receipt') } }),
      ),
    },
  },

  // Events -------------------------------------------------------------
  {
    operationId: 'events',
    method: 'GET',
    url: '/v1/events',
    tag: 'events',
    summary: 'Live events (long poll): receipts, room messages, server replies, presence, renames, conversations',
    description:
      'Events wait in a bounded per-session buffer; when it is full the oldest are dropped and `dropped` says how many. Pass the last event id you handled as `after`: events up to it are discarded and the rest returned (at least once). Without `after`, returned events are discarded at once.',
    auth: 'bearer',
    querystring: {
      type: 'object',
      properties: {
        wait: { type: 'integer', minimum: 0, maximum: 60, default: 0 },
        max: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      },
    },
    responses: { 200: json('Events, oldest first.', ref('Events')) },
    errors: [409],
  },
  {
    operationId: 'stream',
    method: 'GET',
    url: '/v1/stream',
    tag: 'events',
    summary: 'Server-sent events: messages pushed as they arrive',
    description:
      'Starts a push session of the token\'s device (replacing its polling one, or an earlier stream with the same token; the user\'s other devices keep theirs). Events: ready, message (id: = seq), receipt, notice, presence, rename, conversation, read (another of your devices marked a message read), closing (reason replaced, revoked, shutdown…). Every message with an id (and every queued receipt) must be acknowledged with POST /v1/ack using the same token: until then its sender gets 300 "not yet" after the ack timeout, and it is pushed again on the next stream. With ack=auto the server acknowledges each one as it writes it to the stream (at most once: what is in flight when the connection drops is not pushed again). A comment line every 15 s keeps proxies from closing it.',
    auth: 'bearer-or-query',
    querystring: {
      type: 'object',
      properties: {
        token: { type: 'string', description: 'For EventSource, which cannot set headers.' },
        ack: {
          type: 'string',
          enum: ['manual', 'auto'],
          default: 'manual',
          description: 'manual: acknowledge with POST /v1/ack; auto: the server acknowledges what it writes to the stream.',
        },
      },
    },
    responses: { 200: { description: 'An event stream.', contentType: 'text/event-stream', schema: { type: 'string' } } },
    custom: true,
  },
  {
    operationId: 'websocket',
    method: 'GET',
    url: '/v1/ws',
    tag: 'events',
    summary: 'WebSocket carrying the native protocol',
    description:
      'Binary messages carry the native protocol byte stream (docs/protocol): send frames (REGISTER/LOGIN first), receive frames; a message may hold several frames or part of one. Text messages close with 1003; a message over the size limit closes with 1009; malformed frames close with 1008.',
    auth: 'none',
    responses: { 101: { description: 'Switching protocols.' } },
    custom: true,
  },

  // Presence and server ------------------------------------------------------
  {
    operationId: 'who',
    method: 'GET',
    url: '/v1/who',
    tag: 'presence',
    summary: 'Who is online',
    auth: 'bearer',
    responses: { 200: json('Online users by name.', obj({ users: { type: 'array', items: ref('Presence') } })) },
  },
  {
    operationId: 'watchPresence',
    method: 'POST',
    url: '/v1/presence',
    tag: 'presence',
    summary: 'Receive presence events (who comes, who leaves)',
    auth: 'bearer',
    body: obj({ watch: { type: 'boolean' } }),
    responses: { 200: json('The setting.', obj({ watch: { type: 'boolean' } })) },
  },
  {
    operationId: 'stats',
    method: 'GET',
    url: '/v1/stats',
    tag: 'presence',
    summary: 'Server statistics',
    auth: 'bearer',
    responses: { 200: json('Counters.', { type: 'object' }) },
  },
  {
    operationId: 'limits',
    method: 'GET',
    url: '/v1/limits',
    tag: 'presence',
    summary: "The server's limits (longest name, topic and text, largest file), for a client to check input before sending it",
    auth: 'none',
    responses: { 200: json('The limits, in UTF-8 bytes.', ref('Limits')) },
  },

  // Topics -------------------------------------------------------------
  {
    operationId: 'topics',
    method: 'GET',
    url: '/v1/topics',
    tag: 'topics',
    summary: 'Every topic with its subscriber count',
    auth: 'bearer',
    responses: { 200: json('Topics.', obj({ topics: { type: 'array', items: ref('Topic') } })) },
  },
  {
    operationId: 'subscriptions',
    method: 'GET',
    url: '/v1/subscriptions',
    tag: 'topics',
    summary: 'Your subscriptions',
    auth: 'bearer',
    responses: { 200: json('Topic names.', obj({ topics: { type: 'array', items: { type: 'string' } } })) },
  },
  {
    operationId: 'subscribe',
    method: 'PUT',
    url: '/v1/subscriptions/:topic',
    tag: 'topics',
    summary: 'Subscribe to a topic (persistent; messages to #topic are queued for you, online or not)',
    auth: 'bearer',
    params: obj({ topic: { type: 'string', minLength: 1, maxLength: 256 } }),
    responses: {
      200: json(
        'Subscribed; `created` is false if you already were.',
        obj({ topic: { type: 'string' }, created: { type: 'boolean' } }),
      ),
    },
    errors: [413],
  },
  {
    operationId: 'unsubscribe',
    method: 'DELETE',
    url: '/v1/subscriptions/:topic',
    tag: 'topics',
    summary: 'Unsubscribe from a topic',
    auth: 'bearer',
    params: obj({ topic: { type: 'string', minLength: 1, maxLength: 256 } }),
    responses: {
      200: json(
        '`removed` is false if you were not subscribed.',
        obj({ topic: { type: 'string' }, removed: { type: 'boolean' } }),
      ),
    },
  },

  // Block list -------------------------------------------------------------
  {
    operationId: 'blocked',
    method: 'GET',
    url: '/v1/blocked',
    tag: 'block',
    summary: 'Users you block',
    auth: 'bearer',
    responses: { 200: json('Blocked users.', obj({ users: { type: 'array', items: ref('User') } })) },
  },
  {
    operationId: 'block',
    method: 'POST',
    url: '/v1/block',
    tag: 'block',
    summary: 'Block a user: their messages and conversation requests to you are refused as if you did not exist',
    auth: 'bearer',
    body: obj({ user: userRef }),
    responses: { 200: json('Blocked.', ref('User')) },
    errors: [404],
  },
  {
    operationId: 'unblock',
    method: 'POST',
    url: '/v1/unblock',
    tag: 'block',
    summary: 'Unblock a user',
    auth: 'bearer',
    body: obj({ user: userRef }),
    responses: { 200: json('Unblocked.', ref('User')) },
    errors: [404],
  },

  // Conversations -------------------------------------------------------------
  {
    operationId: 'requestConversation',
    method: 'POST',
    url: '/v1/conversations',
    tag: 'conversations',
    summary: 'Ask an online user for a direct live conversation',
    description:
      'The peer gets a conversation event "request"; you get "accepted", "declined" or "expired". Conversation messages are live and not stored.',
    auth: 'bearer',
    body: obj({ to: userRef }),
    responses: { 201: json('Requested.', obj({ convId: { type: 'string' } })) },
    errors: [404, 409],
  },
  {
    operationId: 'acceptConversation',
    method: 'POST',
    url: '/v1/conversations/:convId/accept',
    tag: 'conversations',
    summary: 'Accept a conversation request',
    auth: 'bearer',
    params: obj({ convId: { type: 'string', minLength: 1, maxLength: 64 } }),
    responses: { 204: noContent },
    errors: [404],
  },
  {
    operationId: 'declineConversation',
    method: 'POST',
    url: '/v1/conversations/:convId/decline',
    tag: 'conversations',
    summary: 'Decline a conversation request',
    auth: 'bearer',
    params: obj({ convId: { type: 'string', minLength: 1, maxLength: 64 } }),
    responses: { 204: noContent },
    errors: [404],
  },
  {
    operationId: 'conversationSend',
    method: 'POST',
    url: '/v1/conversations/:convId/messages',
    tag: 'conversations',
    summary: 'Say something in an open conversation (live, not stored)',
    auth: 'bearer',
    params: obj({ convId: { type: 'string', minLength: 1, maxLength: 64 } }),
    body: { type: 'object', additionalProperties: false, oneOf: bodyOneOf, properties: { text: textField, base64: base64Field } },
    responses: { 204: noContent },
    errors: [404, 413],
  },
  {
    operationId: 'closeConversation',
    method: 'DELETE',
    url: '/v1/conversations/:convId',
    tag: 'conversations',
    summary: 'Close a conversation',
    auth: 'bearer',
    params: obj({ convId: { type: 'string', minLength: 1, maxLength: 64 } }),
    responses: { 204: noContent },
    errors: [404],
  },

  // Files -------------------------------------------------------------
  {
    operationId: 'uploadFile',
    method: 'POST',
    url: '/v1/files',
    tag: 'files',
    summary: 'Upload a file (streamed) and send it to a user, ALL or a #topic',
    description:
      'The request body is the file\'s bytes (any content type; curl --data-binary @file or -T file). It is streamed to disk, never held in memory, checked against its declared size (and sha256 if given), stored once, and announced to the recipients as a message of kind "file" whose text is {"fileId","name","size","sha256","text"?}. Recipients download it by id. Answers 501 when the server runs without a file service.',
    auth: 'bearer',
    querystring: {
      type: 'object',
      required: ['name'],
      properties: {
        to: {
          type: 'string',
          minLength: 1,
          maxLength: 256,
          description: 'A user name, "ALL" or "#topic" (same as a message\'s string `to`).',
        },
        toId: userId,
        name: { type: 'string', minLength: 1, maxLength: 1024, description: 'The file name the recipients see.' },
        size: {
          type: 'integer',
          minimum: 0,
          maximum: Number.MAX_SAFE_INTEGER,
          description: 'Exact size in bytes (default: Content-Length).',
        },
        sha256: {
          type: 'string',
          pattern: '^[0-9a-fA-F]{64}$',
          description: 'Refuse the upload (422) unless the content has this hash.',
        },
        text: { type: 'string', description: 'A text that travels with the file.' },
        msgId: msgIdField,
        receipt: { type: 'boolean' },
        readReceipt: { type: 'boolean' },
        idempotent: { type: 'boolean' },
        ttlMs: { type: 'integer', minimum: 0, maximum: 0xffffffff },
      },
    },
    responses: {
      201: json(
        'Stored and announced.',
        obj({
          fileId: { type: 'string' },
          sha256: { type: 'string' },
          size: { type: 'integer' },
          msgId: { type: 'integer' },
          status: { type: 'string' },
          seq: { type: 'integer' },
          recipients: { type: 'integer' },
        }),
      ),
    },
    errors: [404, 411, 413, 422, 501, 503],
    custom: true,
  },
  {
    operationId: 'downloadFile',
    method: 'GET',
    url: '/v1/files/:fileId',
    tag: 'files',
    summary: 'Download a file; a Range request resumes an interrupted download',
    description:
      "Only the sender and the recipients may download. Send `Range: bytes=N-` to resume from byte N (206 Partial Content with Content-Range); the ETag is the content's SHA-256. ?token= works in place of the Authorization header, for links.",
    auth: 'bearer-or-query',
    params: obj({ fileId: { type: 'string', minLength: 1, maxLength: 128 } }),
    querystring: {
      type: 'object',
      properties: { token: { type: 'string', description: 'For links, which cannot set headers.' } },
    },
    responses: {
      200: {
        description: 'The whole file.',
        contentType: 'application/octet-stream',
        schema: { type: 'string', contentMediaType: 'application/octet-stream' },
      },
      206: {
        description: 'The requested byte range.',
        contentType: 'application/octet-stream',
        schema: { type: 'string', contentMediaType: 'application/octet-stream' },
      },
    },
    errors: [403, 404, 416, 501],
    custom: true,
  },

  // Operations -------------------------------------------------------------
  {
    operationId: 'health',
    method: 'GET',
    url: '/healthz',
    tag: 'operations',
    summary: 'Liveness and store reachability',
    auth: 'none',
    responses: {
      200: json('Alive, store reachable.', ref('Health')),
      503: json('The store does not answer, its disk is full (store: full), or the server is stopping.', ref('Health')),
    },
    custom: true,
  },
  {
    operationId: 'metrics',
    method: 'GET',
    url: '/metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    auth: 'none',
    responses: {
      200: { description: 'Prometheus text exposition format.', contentType: 'text/plain', schema: { type: 'string' } },
    },
    custom: true,
  },
  {
    operationId: 'openapi',
    method: 'GET',
    url: '/openapi.json',
    tag: 'operations',
    summary: 'This document',
    auth: 'none',
    responses: { 200: json('OpenAPI 3.1.', { type: 'object' }) },
    custom: true,
  },
  {
    operationId: 'docs',
    method: 'GET',
    url: '/docs',
    tag: 'operations',
    summary: 'The API reference as a web page',
    auth: 'none',
    responses: { 200: { description: 'HTML.', contentType: 'text/html', schema: { type: 'string' } } },
    custom: true,
  },
  {
    operationId: 'adminPage',
    method: 'GET',
    url: '/admin',
    tag: 'operations',
    summary: "The operator's dashboard (a web page; on when the server has --admin-token)",
    auth: 'admin',
    responses: { 200: { description: 'HTML.', contentType: 'text/html', schema: { type: 'string' } } },
    errors: [404],
    custom: true,
  },
  {
    operationId: 'adminMetrics',
    method: 'GET',
    url: '/admin/metrics.json',
    tag: 'operations',
    summary: "The dashboard's data: every /metrics figure as JSON, who is online, the largest queues, each gateway's connections",
    auth: 'admin',
    responses: { 200: json('A snapshot; rates are for the client to compute from two snapshots.', ref('AdminSnapshot')) },
    errors: [404],
    custom: true,
  },
]

export const tags: { name: string; description: string }[] = [
  { name: 'session', description: 'Register, log in (by token or password), log out, rename, password, devices.' },
  { name: 'messages', description: 'Send, poll, acknowledge, receipts.' },
  { name: 'events', description: 'Live events by long poll, server-sent events or WebSocket.' },
  { name: 'presence', description: 'Who is online.' },
  { name: 'topics', description: 'Persistent subscriptions with mailbox semantics.' },
  { name: 'block', description: 'Your block list.' },
  { name: 'conversations', description: 'Direct live conversations (seed 003).' },
  { name: 'files', description: 'File transfer (seed 004).' },
  { name: 'operations', description: 'Health, metrics, this reference.' },
]

export function routeSpec(operationId: string): RouteSpec {
  const r = routes.find((x) => x.operationId === operationId)
  if (r === undefined) throw new Error(`no route ${operationId}`)
  return r
}
