// The built server (`dist/main.js`) as a child process for this package's tests, started with a
// minimal environment and resolved once its banner names the listening addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface ServerChild {
  readonly child: ChildProcess;
  /** `https://host:port` from the banner. */
  readonly url: string;
  /** `http://host:port` of the redirect, or null when it is off (`FIELDVAULT_HTTP_PORT=off`). */
  readonly httpUrl: string | null;
  /** Everything the process wrote so far (stdout and stderr). */
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts the server on `dataDir` with ports chosen by the system, log level `warn` and the plain
 * HTTP redirect on, unless `env` says otherwise. Rejects (with `output` and `code`) if it exits
 * before listening. With `terminal` the server runs on a pseudo-terminal (needs `script`).
 */
export function startServerChild(dataDir: string, env: Readonly<Record<string, string>> = {}, options: { readonly terminal?: boolean } = {}): Promise<ServerChild> {
  const fullEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    FIELDVAULT_DATA_DIR: dataDir,
    FIELDVAULT_PORT: '0',
    FIELDVAULT_HTTP_PORT: '0',
    FIELDVAULT_LOG_LEVEL: 'warn',
    ...env,
  };
  const wantsHttp = fullEnv['FIELDVAULT_HTTP_PORT'] !== 'off';
  // `terminal`: under util-linux `script`, so the server's output is a pseudo-terminal as in an operator's shell.
  const child = options.terminal === true
    ? spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(main)}`, '/dev/null'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [main], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /listening on (https:\/\/\S+)/.exec(out);
      const h = /plain HTTP on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined && (!wantsHttp || h?.[1] !== undefined)) {
        clearInterval(timer);
        resolve({ child, url: m[1], httpUrl: h?.[1] ?? null, output: () => out, exited });
      }
    }, 50);
    void exited.then((code) => {
      clearInterval(timer);
      reject(Object.assign(new Error(`server exited with ${String(code)}: ${out}`), { output: out, code }));
    });
  });
}
