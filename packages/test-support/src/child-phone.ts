/**
 * The child side of a phone process: a phone step run in its own process so that a test can kill
 * it with a real kill -9. Its arguments, its transport to the one server it talks to, its output
 * and its own SIGKILL. Used by packages/scenarios (phone-process.ts) and by storage-sqlcipher's
 * sync-crash test (test/fixtures/sync-child.ts).
 */
import { writeSync } from 'node:fs';
import { createHttpTransport, type HttpTransport } from '@fieldvault/client';

/** What every child phone is told: its directory and IMEI, who logs in, and the server (URL, pinned certificate, id). */
export interface ChildPhoneArgs {
  readonly dir: string;
  readonly imei: string;
  readonly username: string;
  readonly password: string;
  readonly url: string;
  readonly fingerprint: string;
  readonly serverId: string;
}

/**
 * Reads the child's arguments: one JSON document on stdin, written and closed by the parent.
 * Stdin rather than argv because they hold a password (argv is readable by every local user).
 */
export async function readChildPhoneArgs<A extends ChildPhoneArgs>(): Promise<A> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as A;
}

/** The HTTPS transport to the child's server, trusting only its pinned certificate. */
export function childPhoneTransport(args: ChildPhoneArgs): HttpTransport {
  return createHttpTransport({ baseUrl: args.url, serverId: args.serverId, tls: { pinSha256: args.fingerprint }, timeoutMs: 10_000 });
}

/** Writes one line on stdout synchronously, so that it is out even when a kill -9 follows at once. */
export function sayLine(line: string): void {
  writeSync(1, `${line}\n`);
}

/** Kills this process with SIGKILL: a real kill -9, no cleanup, no exit handlers. */
export function killSelf(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
