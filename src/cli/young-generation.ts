/**
 * The young generation the server is meant to run with: V8's semi-space at SEMI_SPACE_MIB (a new space of 2 × 32
 * MiB instead of 2 × 16), which halves its garbage collection under load (docs/BENCHMARKS.md, Run L). V8 reads it
 * only at start, so it is a node option wherever the server is started: the `switchboard` command's first line
 * (bin/switchboard.js), `npm start` (package.json) and scripts/spawn-server.ts; test/unit/young-generation.test.ts
 * checks that they agree with this value.
 */
export const SEMI_SPACE_MIB = 32

/** The node option, as the places above write it. */
export const SEMI_SPACE_OPTION = `--max-semi-space-size=${SEMI_SPACE_MIB}`

/** --max-semi-space-size as given to this node (its options, then NODE_OPTIONS), in MiB; undefined: V8's default. */
export function semiSpaceFlag(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  const args = [...execArgv, ...nodeOptions.split(/\s+/)]
  let found: number | undefined
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(args[i]!)
    if (m !== null) found = Number(m[1] ?? args[i + 1])
  }
  return found !== undefined && Number.isFinite(found) ? found : undefined
}
