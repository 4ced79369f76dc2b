// Test helpers: the BUILT CLI run as a child process, and a real fieldvault server process
// (apps/server/dist/main.js on a temporary data directory: embedded store, self-signed TLS, from
// @fieldvault/test-support) with a small admin client to create users. Both are spawned by path:
// the root `npm test` builds every package before any test runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapshot as snapshotFiles, startServerProcess, type ServerProcess } from '@fieldvault/test-support';

export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export const PASSWORD_A = 'amber lantern over quiet harbour';
export const PASSWORD_B = 'seven copper kettles sing at dawn';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node apps/field/dist/main.js --home <home> ...args` with `stdin` piped in (a password line
 * for --password-stdin) and a clean environment (no FIELDVAULT_FIELD_HOME leaking in).
 */
export function cli(home: string, args: readonly string[], stdin = '', env: Record<string, string> = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build apps/field first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--home', home, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: home, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** `cli` with a password on stdin and --password-stdin. */
export function cliWith(home: string, password: string, args: readonly string[]): Promise<CliResult> {
  return cli(home, ['--password-stdin', ...args], `${password}\n`);
}

/** Parses stdout of a --json command (fails the test with the output when it is not JSON). */
export function json<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${String(r.code)}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}

// The server process, PNG maker and file listings are shared with the other suites (packages/test-support).
export { ADMIN_PASSWORD, filesUnder, png, type ServerProcess } from '@fieldvault/test-support';

/** Path → SHA-256 of every file under `dir` without the home's lock file (it holds a process id), to prove nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  return snapshotFiles(dir, { ignore: ['lock'] });
}

/**
 * Starts apps/server on `dataDir` (HTTPS on a random loopback port, no HTTP redirect), creates the
 * first admin with the printed setup token and logs the admin in from its own Ed25519 device key.
 */
export function startServer(dataDir: string, serverId: string): Promise<ServerProcess> {
  return startServerProcess(dataDir, serverId);
}

/**
 * One server process for a whole test file: `server-a` under a new temporary directory (`root`,
 * for the file's phones too), stopped and removed when the file's tests end.
 */
export async function startFileServer(t: { teardown(fn: () => Promise<void>): void }, name: string): Promise<{ root: string; server: ServerProcess }> {
  const root = mkdtempSync(join(tmpdir(), `fieldvault-field-${name}-`));
  let server: ServerProcess | undefined;
  t.teardown(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  server = await startServer(join(root, 'server-a'), 'server-a');
  return { root, server };
}
