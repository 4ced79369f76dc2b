import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { PUBLIC_KEY_PIN_PATTERN } from '@fieldvault/client';
import { NODE_ID_PATTERN, FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import { openDevice, readArgFile, transportOf, type Context } from '../context.js';
import { SERVER_NAME_PATTERN, SERVER_NAME_RULE, type ServerEntry } from '../home.js';
import { table } from '../output.js';
import type { Action } from './action.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `ab:cd…`, `ABCD…` → `AB:CD:…` (a certificate fingerprint, as the server prints it); a
 * public-key pin `sha256//…` stays as it is. @throws FIELD_USAGE
 */
export function normalisePin(pin: string): string {
  if (PUBLIC_KEY_PIN_PATTERN.test(pin)) return pin;
  const hex = pin.replaceAll(':', '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new FieldvaultError('FIELD_USAGE', { detail: '--pin: the SHA-256 fingerprint the server prints at start (64 hex digits, colons optional), or its public-key pin (sha256//…)' });
  }
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

/** Placeholder id of a transport used only to ask a server its id (`identifyServer` ignores it). */
const ASKING_ID = 'unknown';

/** How the server id of a new entry was settled. */
type IdCheck = 'told' | 'confirmed' | 'not-told' | 'unreachable' | 'offline';

/**
 * The server id for a new entry: asked from the server over the entry's verified TLS (its
 * challenge answer names it), compared with --server-id when given. A server that cannot be
 * reached, or that does not tell its id (older servers), is accepted only with --server-id; the
 * SDK then checks the id at each login, when the server tells it.
 * @throws TRANSPORT_SERVER_ID_MISMATCH, TRANSPORT_TLS_UNTRUSTED, FIELD_USAGE, TRANSPORT_BAD_RESPONSE…
 */
async function settleServerId(ctx: Context, entry: Omit<ServerEntry, 'serverId'>, given: string | undefined, offline: boolean): Promise<{ serverId: string; check: IdCheck; keyPin?: string }> {
  if (offline) {
    if (given === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: '--offline needs --server-id (the id the server prints at start)' });
    return { serverId: given, check: 'offline' };
  }
  const { device } = await openDevice(ctx);
  const transport = transportOf({ ...entry, serverId: given ?? ASKING_ID });
  let told: string | null;
  let keyPin: string | undefined;
  try {
    told = (await device.identifyServer(transport)).serverId;
    // The public key of the certificate this verified connection showed (see the add command).
    keyPin = transport.peerKeyPin();
  } catch (err) {
    if (!isFieldvaultError(err) || err.code !== 'TRANSPORT_UNREACHABLE') throw err;
    if (given === undefined) {
      throw new FieldvaultError('FIELD_USAGE', { detail: 'the server cannot be reached to learn its id: add it when it can be reached, or give --server-id (the id it prints at start)' });
    }
    return { serverId: given, check: 'unreachable' };
  } finally {
    transport.close();
  }
  if (told === null) {
    if (given === undefined) {
      throw new FieldvaultError('FIELD_USAGE', { detail: 'this server does not tell its id (an older server): give --server-id, the id it prints at start ("fieldvault server <id> listening on …")' });
    }
    return { serverId: given, check: 'not-told', ...(keyPin === undefined ? {} : { keyPin }) };
  }
  if (given !== undefined && given !== told) {
    throw new FieldvaultError('TRANSPORT_SERVER_ID_MISMATCH', {
      detail: `the server says its id is "${told}", not "${given}"`,
      details: { serverId: given, reported: told },
    });
  }
  return { serverId: told, check: given === undefined ? 'told' : 'confirmed', ...(keyPin === undefined ? {} : { keyPin }) };
}

const ID_CHECK_NOTES: Record<IdCheck, string> = {
  told: 'server id as the server told it',
  confirmed: 'server id confirmed by the server',
  'not-told': 'this server does not tell its id: make sure --server-id is the one it prints at start',
  unreachable: 'the server could not be reached now: its certificate and id are checked at the first login',
  offline: 'not contacted (--offline): its certificate and id are checked at the first login',
};

/** How a server's certificate is checked, as `servers list` and `status` both show it. */
export function trustOf(e: ServerEntry): string {
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
        'Give --pin (repeatable, for a certificate rotation), --ca, or both. The server is contacted once over the verified TLS connection: a wrong ' +
        'certificate is refused now, its public key is pinned too (so a certificate renewed with the same key keeps working), ' +
        'and the server id is taken from the server (leave --server-id out) or checked against --server-id ' +
        '(TRANSPORT_SERVER_ID_MISMATCH). A server that does not tell its id, or cannot be reached now, needs --server-id; the SDK checks the id ' +
        'again at every login, before your password is sent. The id names the server\'s sync state on this phone, so it must be the real one.',
    )
    .argument('<name>', `a short name of your choice for the server, e.g. "office": ${SERVER_NAME_RULE}`)
    .argument('<url>', 'https://host:port')
    .option('--server-id <id>', 'the server id it prints at start (default: the id the server tells)')
    .option('--pin <fingerprint>', 'SHA-256 fingerprint of its certificate, or its public-key pin sha256//… (repeatable)', collect)
    .option('--ca <file>', 'PEM file of the CA (or the self-signed certificate) to trust')
    .option('--offline', 'do not contact the server now (no network): needs --server-id; checked at the first login')
    .addHelpText('after', '\nExample:\n  fieldvault-field servers add office https://10.0.0.5:8443 --server-id srv-1a2b3c4d --pin 52:D6:E2:…:9F')
    .action(
      action(async (ctx, name, url, raw) => {
        const o = raw as { serverId?: string; pin?: string[]; ca?: string; offline?: boolean };
        const serverName = String(name);
        if (!SERVER_NAME_PATTERN.test(serverName)) throw new FieldvaultError('FIELD_USAGE', { detail: `server name: ${SERVER_NAME_RULE}` });
        let parsed: URL;
        try {
          parsed = new URL(String(url));
        } catch {
          throw new FieldvaultError('FIELD_USAGE', { detail: `url: not a URL: ${String(url)}` });
        }
        if (parsed.protocol !== 'https:') throw new FieldvaultError('FIELD_USAGE', { detail: 'url: must start with https:// (the SDK talks to servers over verified TLS only)' });
        if (o.serverId !== undefined && !NODE_ID_PATTERN.test(o.serverId)) throw new FieldvaultError('FIELD_USAGE', { detail: '--server-id: lowercase letters, digits, ".", "_", "-" (as the server prints it)' });
        if (o.pin === undefined && o.ca === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: 'give --pin FINGERPRINT or --ca FILE (or both): the server certificate must be verified' });
        const trust: Omit<ServerEntry, 'serverId'> = {
          url: parsed.href.replace(/\/$/, ''),
          ...(o.pin === undefined ? {} : { pinSha256: o.pin.map(normalisePin) }),
          ...(o.ca === undefined ? {} : { ca: readCa(o.ca) }),
        };
        transportOf({ ...trust, serverId: o.serverId ?? ASKING_ID }).close(); // the SDK checks the options too (INPUT_INVALID names the one it refuses)
        ctx.home.lock();
        const conflicts = (c: { servers: Readonly<Record<string, ServerEntry>> }, serverId: string | undefined): void => {
          if (Object.hasOwn(c.servers, serverName)) throw new FieldvaultError('FIELD_SERVER_EXISTS', { detail: serverName });
          const same = Object.entries(c.servers).find(([, e]) => e.serverId === serverId);
          if (same !== undefined) throw new FieldvaultError('FIELD_SERVER_ID_EXISTS', { detail: `server id ${String(serverId)} is configured as "${same[0]}"` });
        };
        // Name and given id first, so a typo costs no network round trip.
        conflicts(ctx.home.ensure().config, o.serverId);
        const { serverId, check, keyPin } = await settleServerId(ctx, trust, o.serverId, o.offline === true);
        // A pinned server's public key is pinned too, learned over the connection the given pin
        // verified: a certificate renewed with the same key (a routine renewal) keeps working,
        // where a certificate fingerprint alone would lock the phone out (admin audit s16, F7).
        const learned = keyPin !== undefined && trust.pinSha256 !== undefined && !trust.pinSha256.includes(keyPin);
        const entry: ServerEntry = { ...trust, ...(learned ? { pinSha256: [...(trust.pinSha256 ?? []), keyPin] } : {}), serverId };
        ctx.home.update((c) => {
          conflicts(c, serverId);
          return { ...c, servers: { ...c.servers, [serverName]: entry } };
        });
        ctx.out.result({ name: serverName, url: entry.url, serverId: entry.serverId, trust: trustOf(entry), serverIdCheck: check, ...(learned ? { keyPinned: keyPin } : {}) }, () =>
          `added server ${serverName}: ${entry.url} (${entry.serverId}), ${trustOf(entry)}\n${ID_CHECK_NOTES[check]}` +
            (learned ? `\nits public key is pinned too (${keyPin}): a certificate renewed with the same key is accepted` : ''),
        );
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
            ? 'No servers configured: add one with "fieldvault-field servers add NAME URL --pin FINGERPRINT".'
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
    .description(
      'Removes a server from this phone. Records, and a temporary database of that server if there is one, stay on the phone, and so does ' +
        'what the phone knows of its sync (what it acknowledged, where the pull stopped): adding the same server (same id) again resumes ' +
        'there instead of sending everything again. Until then "status" lists it as not configured, without pending counts (nothing is sent to it).',
    )
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
