/**
 * The OpenAPI 3.1 document, rendered from the route table in routes-spec.ts (the same schemas fastify
 * validates with), and a plain HTML reference page made from that document: no CDN, no script.
 */
import { ErrorCodes } from '../../core/errors.js'
import { components, routes, tags, type RouteSpec, type Schema } from './routes-spec.js'

export type OpenApiDocument = Record<string, unknown> & {
  openapi: string
  info: { title: string; version: string; description: string }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Schema>; securitySchemes: Record<string, unknown> }
}

interface Operation {
  operationId: string
  summary: string
  description?: string
  tags: string[]
  security?: Record<string, string[]>[]
  parameters?: Parameter[]
  requestBody?: { required: boolean; content: Record<string, { schema: Schema }> }
  responses: Record<
    string,
    { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: Schema }> }
  >
}

interface Parameter {
  name: string
  in: 'query' | 'path'
  required: boolean
  description?: string
  schema: Schema
}

const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }

const COMMON_ERRORS: Record<number, string> = {
  400: 'The body or a parameter does not match the schema (SB_ERR_MALFORMED), or the core refused it.',
  401: 'No token, or a wrong one (SB_ERR_NOT_LOGGED_IN, SB_ERR_AUTH).',
  403: 'Not allowed (SB_ERR_FORBIDDEN).',
  404: 'No such user, topic, message or conversation.',
  411: 'The upload has neither a size parameter nor a Content-Length.',
  416: 'The Range is outside the file (Content-Range: bytes */size).',
  422: 'The upload does not match its declared size or SHA-256 (SB_ERR_FILE_CHECK).',
  501: 'The server runs without a file service.',
  409: 'Conflicts with the current state (name taken, wrong session mode, peer offline).',
  413: 'A field or the body is larger than its limit (SB_ERR_TOO_LARGE; `limit` names it).',
  429: 'Too many requests (SB_ERR_RATE_LIMITED); Retry-After says when to try again.',
  503: 'A server limit was reached or the server is shutting down.',
  507: "The recipient's queue is full (SB_ERR_QUEUE_FULL).",
}

function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

function parameters(r: RouteSpec): Parameter[] {
  const out: Parameter[] = []
  for (const [where, schema] of [
    ['path', r.params],
    ['query', r.querystring],
  ] as const) {
    if (schema === undefined) continue
    const props = (schema.properties ?? {}) as Record<string, Schema>
    const required = new Set((schema.required ?? []) as string[])
    for (const [name, s] of Object.entries(props)) {
      const { description, ...rest } = s
      const p: Parameter = { name, in: where, required: where === 'path' || required.has(name), schema: rest }
      if (typeof description === 'string') p.description = description
      out.push(p)
    }
  }
  return out
}

function operation(r: RouteSpec): Operation {
  const op: Operation = { operationId: r.operationId, summary: r.summary, tags: [r.tag], responses: {} }
  if (r.description !== undefined) op.description = r.description
  if (r.auth === 'admin') op.security = [{ adminBearer: [] }, { adminBasic: [] }]
  else if (r.auth !== 'none') op.security = [{ bearer: [] }]
  const params = parameters(r)
  if (params.length > 0) op.parameters = params
  if (r.body !== undefined) op.requestBody = { required: true, content: { 'application/json': { schema: r.body } } }
  for (const [status, res] of Object.entries(r.responses)) {
    const out: Operation['responses'][string] = { description: res.description }
    if (res.schema !== undefined) out.content = { [res.contentType ?? 'application/json']: { schema: res.schema } }
    op.responses[status] = out
  }
  const errs = new Set<number>([
    ...(r.body || r.params || r.querystring ? [400] : []),
    ...(r.auth === 'admin' ? [401] : r.auth !== 'none' ? [401, 429] : []),
    ...(r.errors ?? []),
  ])
  for (const status of [...errs].sort()) {
    if (op.responses[status] !== undefined) continue
    const res: Operation['responses'][string] = { description: COMMON_ERRORS[status] ?? 'Error.', content: problemContent }
    if (status === 429) res.headers = { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } }
    op.responses[status] = res
  }
  op.responses.default = { description: 'Any other error, as problem details.', content: problemContent }
  return op
}

export function buildOpenApi(opts: { version: string; serverUrl?: string }): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {}
  for (const r of routes) (paths[openApiPath(r.url)] ??= {})[r.method.toLowerCase()] = operation(r)
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard HTTP API',
      version: opts.version,
      description:
        "Every operation of the Switchboard broker over JSON. Authenticate with `Authorization: Bearer <id>.<secret>`, the token that /v1/register returns. Each token is a device of its user: a call with a token starts (or reuses) that device's HTTP session, which replaces a live session of the same device on any other protocol; the user's other devices stay. POST /v1/login with a name and password makes a new device. Errors are RFC 9457 problem details with a stable `code`.",
    },
    tags,
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The token from /v1/register or /v1/login: "<id>.<secret>".' },
        adminBearer: { type: 'http', scheme: 'bearer', description: "The operator's token (the server's --admin-token)." },
        adminBasic: {
          type: 'http',
          scheme: 'basic',
          description: "The operator's token as the password (any user name), so a browser can ask for it.",
        },
      },
    },
  }
  if (opts.serverUrl !== undefined) doc.servers = [{ url: opts.serverUrl }]
  return doc
}

// ---------------------------------------------------------------- the reference page

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function schemaHtml(s: Schema | undefined): string {
  if (s === undefined) return ''
  return `<pre>${esc(JSON.stringify(s, null, 2))}</pre>`
}

export function docsPage(doc: OpenApiDocument): string {
  const parts: string[] = []
  for (const t of tags) {
    parts.push(`<h2 id="tag-${esc(t.name)}">${esc(t.name)}</h2><p>${esc(t.description)}</p>`)
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        if (!op.tags.includes(t.name)) continue
        parts.push(
          `<section id="${esc(op.operationId)}"><h3><span class="m m-${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>`,
        )
        parts.push(
          `<p><b>${esc(op.summary)}</b>${op.security ? ` <span class="auth">${op.security[0]?.adminBearer ? 'admin token' : 'bearer token'}</span>` : ''}</p>`,
        )
        if (op.description) parts.push(`<p>${esc(op.description)}</p>`)
        if (op.parameters?.length) {
          parts.push('<table><tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>')
          for (const p of op.parameters)
            parts.push(
              `<tr><td><code>${esc(p.name)}</code>${p.required ? ' *' : ''}</td><td>${p.in}</td><td><code>${esc(JSON.stringify(p.schema))}</code></td><td>${esc(p.description ?? '')}</td></tr>`,
            )
          parts.push('</table>')
        }
        const body = op.requestBody?.content['application/json']?.schema
        if (body) parts.push(`<details><summary>request body</summary>${schemaHtml(body)}</details>`)
        parts.push('<ul>')
        for (const [status, res] of Object.entries(op.responses)) {
          const content = res.content ? Object.entries(res.content)[0] : undefined
          const ref = content?.[1].schema.$ref
          const link =
            typeof ref === 'string' ? ` <a href="#schema-${esc(ref.split('/').pop()!)}">${esc(ref.split('/').pop()!)}</a>` : ''
          parts.push(
            `<li><code>${status}</code> ${esc(res.description)}${content ? ` <small>${esc(content[0])}</small>` : ''}${link}</li>`,
          )
        }
        parts.push('</ul></section>')
      }
  }
  parts.push('<h2 id="schemas">Schemas</h2>')
  for (const [name, s] of Object.entries(doc.components.schemas))
    parts.push(`<section id="schema-${esc(name)}"><h3>${esc(name)}</h3>${schemaHtml(s)}</section>`)
  parts.push('<h2 id="errors">Error codes</h2><table><tr><th>code</th><th>status</th><th>meaning</th></tr>')
  for (const [code, e] of Object.entries(ErrorCodes))
    parts.push(`<tr id="${code}"><td><code>${code}</code></td><td>${e.status}</td><td>${esc(e.text)}</td></tr>`)
  parts.push('</table>')
  const toc = tags.map((t) => `<a href="#tag-${esc(t.name)}">${esc(t.name)}</a>`).join(' · ')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;overflow:auto}
section{border-top:1px solid #ddd;padding:.25rem 0}h3{margin:.5rem 0}
.m{display:inline-block;min-width:4rem;text-align:center;color:#fff;border-radius:3px;font-size:12px;padding:2px 4px}
.m-get{background:#2b7}.m-post{background:#27b}.m-put{background:#b72}.m-delete{background:#b33}
.auth{font-size:12px;color:#666;border:1px solid #ccc;border-radius:3px;padding:0 4px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
</style></head><body>
<h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1>
<p>${esc(doc.info.description)}</p>
<p>${toc} · <a href="#schemas">schemas</a> · <a href="#errors">error codes</a> · <a href="/openapi.json">openapi.json</a></p>
${parts.join('\n')}
</body></html>`
}
