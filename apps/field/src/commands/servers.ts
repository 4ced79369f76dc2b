import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { NODE_ID_PATTERN, FieldvaultError } from '@fieldvault/protocol';
import { readArgFile, transportOf } from '../context.js';
import { SERVER_NAME_PATTERN, type ServerEntry } from '../home.js';
import { table } from '../output.js';
import type { Action } from './action.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `ab:cd…`, `ABCD…` → `AB:CD:…` (as the server prints it). @throws FIELD_USAGE */
export function normalisePin(pin: string): string {
  const hex = pin.replaceAll(':', '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new FieldvaultError('FIELD_USAGE', { detail: '--pin: the SHA-256 fingerprint the server prints at start (64 hex digits, colons optional)' });
  return hex.match(/../g)?.join(':') ?? hex;
}

/** The PEM of a CA file, checked to hold at least one certificate. @throws FIELD_FILE_UNREADABLE, FIELD_USAGE */
function readCa(file: string): string {
  const pem = readArgFile(file).toString('utf8');
  try {
    new X509Certificate(pem);
  } catch {
    throw new FieldvaultError('FIELD_USAGE', { detail: `--ca ${file}: not a PEM certificate` });
  }
  return pem;
}

function trustOf(e: ServerEntry): string {
  const parts: string[] = [];
  if (e.pinSha256 !== undefined) parts.push(`pin ${e.pinSha256.map((p) => `${p.slice(0, 11)}…`).join(', ')}`);
  if (e.ca !== undefined) {
    let subject = 'CA';
    try {
      subject = `CA ${new X509Certificate(e.ca).subject.replaceAll('\n', ', ')}`;
    } catch {
      // Shown as plain "CA"; the transport reports an unusable CA when it connects.
    }
    parts.push(subject);
  }
  return parts.join(' + ');
}

export function registerServerCommands(program: Command, action: Action): void {
  const servers = program
    .command('servers')
    .summary('add, list or remove the servers this phone syncs with')
    .description('The servers this phone knows, by a short name of your choice. Their TLS certificate is always verified: by the fingerprint the server prints at start (--pin), by a CA certificate (--ca), or both.');

  servers
    .command('add')
    .description(
      'Adds a server. URL, server id and fingerprint are what the server prints when it starts ("fieldvault server <id> listening on <url>", "SHA-256 fingerprint …"). ' +
        'Give --pin (repeatable, for a certificate rotation), --ca, or both.',
    )
    .argument('<name>', 'a short name for the server, e.g. "office"')
    .argument('<url>', 'https://host:port')
    .requiredOption('--server-id <id>', 'the server id it prints at start')
    .option('--pin <fingerprint>', 'SHA-256 fingerprint of its certificate (repeatable)', collect)
    .option('--ca <file>', 'PEM file of the CA (or the self-signed certificate) to trust')
    .addHelpText('after', '\nExample:\n  fieldvault-field servers add office https://10.0.0.5:8443 --server-id srv-1a2b3c4d --pin 52:D6:E2:…:9F')
    .action(
      action(async (ctx, name, url, raw) => {
        const o = raw as { serverId: string; pin?: string[]; ca?: string };
        const serverName = String(name);
        if (!SERVER_NAME_PATTERN.test(serverName)) throw new FieldvaultError('FIELD_USAGE', { detail: 'server name: lowercase letters, digits, ".", "_", "-", up to 32 characters' });
        let parsed: URL;
        try {
          parsed = new URL(String(url));
        } catch {
          throw new FieldvaultError('FIELD_USAGE', { detail: `url: not a URL: ${String(url)}` });
        }
        if (parsed.protocol !== 'https:') throw new FieldvaultError('FIELD_USAGE', { detail: 'url: must start with https:// (the SDK talks to servers over verified TLS only)' });
        if (!NODE_ID_PATTERN.test(o.serverId)) throw new FieldvaultError('FIELD_USAGE', { detail: '--server-id: lowercase letters, digits, ".", "_", "-" (as the server prints it)' });
        if (o.pin === undefined && o.ca === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: 'give --pin FINGERPRINT or --ca FILE (or both): the server certificate must be verified' });
        const entry: ServerEntry = {
          url: parsed.href.replace(/\/$/, ''),
          serverId: o.serverId,
          ...(o.pin === undefined ? {} : { pinSha256: o.pin.map(normalisePin) }),
          ...(o.ca === undefined ? {} : { ca: readCa(o.ca) }),
        };
        transportOf(entry); // the SDK checks the options too (INPUT_INVALID names the one it refuses)
        ctx.home.lock();
        ctx.home.update((c) => {
          if (Object.hasOwn(c.servers, serverName)) throw new FieldvaultError('FIELD_SERVER_EXISTS', { detail: serverName });
          const same = Object.entries(c.servers).find(([, e]) => e.serverId === entry.serverId);
          if (same !== undefined) throw new FieldvaultError('FIELD_SERVER_EXISTS', { detail: `server id ${entry.serverId} is already configured as "${same[0]}"` });
          return { ...c, servers: { ...c.servers, [serverName]: entry } };
        });
        ctx.out.result({ name: serverName, url: entry.url, serverId: entry.serverId, trust: trustOf(entry) }, () => `added server ${serverName}: ${entry.url} (${entry.serverId}), ${trustOf(entry)}`);
      }),
    );

  servers
    .command('list')
    .description('Lists the configured servers.')
    .action(
      action(async (ctx) => {
        const config = ctx.home.read();
        const rows = Object.entries(config?.servers ?? {}).map(([name, e]) => ({ name, url: e.url, serverId: e.serverId, trust: trustOf(e) }));
        ctx.out.result({ servers: rows }, () =>
          rows.length === 0
            ? 'No servers configured: add one with "fieldvault-field servers add NAME URL --server-id ID --pin FINGERPRINT".'
            : table(rows, [
                { header: 'NAME', value: (r) => r.name },
                { header: 'URL', value: (r) => r.url, max: 50 },
                { header: 'SERVER ID', value: (r) => r.serverId },
                { header: 'TRUST', value: (r) => r.trust, max: 60 },
              ]),
        );
      }),
    );

  servers
    .command('remove')
    .description('Removes a server from this phone. Records, and a temporary database of that server if there is one, stay on the phone.')
    .argument('<name>', 'the server name')
    .action(
      action(async (ctx, name) => {
        const serverName = String(name);
        ctx.home.lock();
        ctx.home.update((c) => {
          if (!Object.hasOwn(c.servers, serverName)) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: serverName });
          const { [serverName]: _removed, ...rest } = c.servers;
          return { ...c, servers: rest };
        });
        ctx.out.result({ removed: serverName }, () => `removed server ${serverName}`);
      }),
    );
}
