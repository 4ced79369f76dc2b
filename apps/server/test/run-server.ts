// The built server (`dist/main.js`) as a process for start-up checks: resolves once it has printed
// its whole banner, or once it has exited (a refused start), with everything it printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface Outcome {
  /** 'started' once the banner's "listening on" line is out; 'exited' otherwise. */
  readonly state: 'started' | 'exited';
  readonly code: number | null;
  readonly output: () => string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly url: string;
}

export interface RunAs {
  /** Run the server under this account (the test runner must be root). */
  readonly uid: number;
  readonly gid: number;
}

/** Starts the server with `env` (plus a minimal base) and resolves when it listens or exits. */
export function runServer(dataDir: string, env: Record<string, string> = {}, as?: RunAs): Promise<Outcome> {
  // Under another account the test runner's process-info hook (tap puts it in NODE_OPTIONS of every
  // child) could not write its record into this package's .tap/ and would print a stack at exit.
  const [command, args] = as === undefined ? [process.execPath, [main]] : ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, main]];
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? '',
      FIELDVAULT_DATA_DIR: dataDir,
      FIELDVAULT_PORT: '0',
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(as === undefined ? {} : { uid: as.uid, gid: as.gid }),
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined && out.includes('Press Ctrl-C')) {
        clearInterval(timer);
        resolve({ state: 'started', code: null, output: () => out, child, exited, url: m[1] });
      }
    }, 50);
    void exited.then((code) => {
      clearInterval(timer);
      resolve({ state: 'exited', code, output: () => out, child, exited, url: '' });
    });
  });
}

export async function stopServer(o: Outcome): Promise<number | null> {
  if (o.child.exitCode !== null) return o.child.exitCode;
  o.child.kill('SIGINT');
  return o.exited;
}

/** True when `text` holds a JavaScript stack frame ("    at fn (file:line)"). */
export function hasStack(text: string): boolean {
  return /\n\s+at .+:\d+:\d+\)?/.test(text);
}
