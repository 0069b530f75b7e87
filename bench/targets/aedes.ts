/** Aedes, started by the harness in its own process so its RSS and CPU can be read apart from the generator. */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { mqttTarget } from './mqtt.js'
import type { TargetFactory } from './target.js'
import { tsxExecArgv, waitForExit } from '../lib/spawn.js'

export const aedesTarget: TargetFactory = (params) => {
  let child: ChildProcess | undefined
  return mqttTarget({
    name: 'aedes',
    start: () =>
      new Promise((resolve, reject) => {
        const c = fork(fileURLToPath(new URL('./aedes-server.ts', import.meta.url)), [], {
          execArgv: tsxExecArgv(),
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        child = c
        const timer = setTimeout(() => {
          c.kill('SIGKILL')
          reject(new Error('aedes: no listening report within 15 s'))
        }, 15_000)
        c.once('message', (m: unknown) => {
          clearTimeout(timer)
          const port = (m as { port?: unknown }).port
          if (typeof port !== 'number' || c.pid === undefined) reject(new Error('aedes: bad start message'))
          else resolve({ port, pid: c.pid })
        })
        c.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`aedes exited early with code ${String(code)}`))
        })
      }),
    stop: async () => {
      if (child === undefined) return
      const c = child
      child = undefined
      c.kill('SIGTERM')
      if (!(await waitForExit(c, 5000))) {
        c.kill('SIGKILL')
        await waitForExit(c, 2000)
      }
    },
  })(params)
}
