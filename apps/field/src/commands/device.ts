import { FieldvaultError } from '@fieldvault/protocol';
import type { Command } from 'commander';
import type { DeviceUser, KnownServer, PendingCounts, Session } from '@fieldvault/client';
import type { KeyRecord } from '@fieldvault/protocol';
import { openDevice, userOf, withSession } from '../context.js';
import { isValidImei, type HomeConfig } from '../home.js';
import { isoOf, keyValues, table, timeOf } from '../output.js';
import type { Action } from './action.js';
import { trustOf } from './servers.js';

/** "verified" / "unverified" / "temporary (server-b)" */
function kindLabel(kind: string): string {
  return kind.startsWith('temporary:') ? `temporary (${kind.slice('temporary:'.length)})` : kind;
}

interface DatabaseView {
  readonly kind: string;
  readonly users: string[];
  readonly key?: { readonly keyId: string; readonly issuer: string; readonly issuedAt: string };
}

/** The databases on the device as the keyring describes them: one verified, one unverified per unverified user, temporary ones per server. */
function databasesOf(users: readonly DeviceUser[], verified: KeyRecord | undefined): DatabaseView[] {
  const out: DatabaseView[] = [];
  const verifiedUsers = users.filter((u) => u.kinds.includes('verified')).map((u) => u.username);
  if (verified !== undefined || verifiedUsers.length > 0) {
    out.push({
      kind: 'verified',
      users: verifiedUsers,
      ...(verified === undefined ? {} : { key: { keyId: verified.keyId, issuer: verified.issuer, issuedAt: isoOf(verified.issuedAt) } }),
    });
  }
  const temporary = new Map<string, string[]>();
  for (const u of users) {
    for (const k of u.kinds) if (k.startsWith('temporary:')) temporary.set(k, [...(temporary.get(k) ?? []), u.username]);
  }
  for (const [kind, names] of [...temporary.entries()].sort()) out.push({ kind, users: names });
  for (const u of users) if (u.kinds.includes('unverified')) out.push({ kind: 'unverified', users: [u.username] });
  return out;
}

/**
 * Users with an unverified database on this phone besides a verified (or temporary) one: records
 * from an offline sign-up that the flow-1 move did not take, because the password of their online
 * login (the server's) did not open it. `claim-records` moves them.
 */
export function strandedUsers(users: readonly DeviceUser[]): string[] {
  return users.filter((u) => u.kinds.includes('unverified') && u.kinds.some((k) => k !== 'unverified')).map((u) => u.username);
}

/** The command that moves a user's stranded unverified records (with --user when not the remembered user). */
export function claimCommand(username: string, config: HomeConfig): string {
  return `fieldvault-field${config.currentUser === username ? '' : ` --user ${username}`} claim-records`;
}

/** The same text as `servers list` (multi-server audit #12: the two said it differently). */
function serverTrust(config: HomeConfig, name: string): string {
  const e = config.servers[name];
  return e === undefined ? '' : trustOf(e);
}

export function registerDeviceCommands(program: Command, action: Action): void {
  program
    .command('init')
    .summary('set up this CLI home as a phone (done automatically on first use)')
    .description(
      'Creates the CLI home (--home, FIELDVAULT_FIELD_HOME or ~/.fieldvault-field) with config.json and the SDK directory, and gives this "phone" an IMEI: ' +
        'a random valid 15-digit IMEI with its Luhn check digit, or the one given. Every other command does this on first use; run init to choose the IMEI.',
    )
    .option('--imei <imei>', '15 digits, the last being the Luhn check digit')
    .action(
      action(async (ctx, raw) => {
        const { imei } = raw as { imei?: string };
        if (imei !== undefined && !isValidImei(imei)) throw new FieldvaultError('FIELD_USAGE', { detail: '--imei: 15 digits with a valid Luhn check digit' });
        ctx.home.lock();
        const existing = ctx.home.read();
        if (existing !== undefined && imei !== undefined && existing.imei !== imei) {
          throw new FieldvaultError('FIELD_USAGE', { detail: `this home is already the phone with IMEI ${existing.imei}; use another --home for another phone` });
        }
        const { config, created } = ctx.home.ensure(imei);
        const { device } = await openDevice(ctx);
        ctx.out.result({ home: ctx.home.dir, imei: device.imei, created }, () =>
          keyValues([
            ['home', ctx.home.dir],
            ['IMEI', config.imei],
            ['state', created ? 'created' : 'already set up'],
          ]),
        );
      }),
    );

  program
    .command('signup')
    .summary('sign up offline on this phone (unverified user)')
    .description(
      'Creates an unverified user on this phone, offline: a database key is generated here and wrapped with your password (Argon2id). ' +
        'Passwords: at least 15 characters, not a common one (the servers\' rules). Your records stay in your own unverified database ' +
        'until your first online login moves them into the verified database. The name is remembered as the current user.',
    )
    .addHelpText('after', '\nExample:\n  fieldvault-field signup --user amina')
    .action(
      action(async (ctx) => {
        const { device, config } = await openDevice(ctx);
        const username = userOf(ctx, { ...config, currentUser: null });
        const password = await ctx.passwords.ask(`New password for ${username}`, { confirm: true });
        await device.signUpOffline(username, password);
        ctx.home.update((c) => ({ ...c, currentUser: username }));
        ctx.out.result({ user: username, kind: 'unverified', current: true }, () =>
          `signed up ${username} on this phone (unverified until the first online login); ${username} is now the current user`,
        );
      }),
    );

  program
    .command('login')
    .summary('log in online to a server (key exchange), or --offline')
    .description(
      'Logs in to a configured server: the server checks your password, the phone offers the database key you hold and adopts the one the server returns ' +
        '(first key: the verified database is created and your unverified records move into it; a different key: the databases are reconciled). ' +
        'With --offline only the password is checked on the phone. Either way your name is remembered as the current user.\n\n' +
        'Sessions: the SDK keeps keys and server tokens in memory only, and each command is its own process, so nothing stays logged in ' +
        'between commands. Every command that opens your records asks for your password again (or reads it with --password-stdin), ' +
        'logs in, does its work and logs out. "login" only remembers your name; "logout" forgets it.',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .option('--offline', 'check the password on the phone only')
    .addHelpText('after', '\nExamples:\n  fieldvault-field login --user amina office\n  fieldvault-field login --user amina --offline')
    .action(
      action(async (ctx, server, raw) => {
        const { offline } = raw as { offline?: boolean };
        if (offline === true && server !== undefined) throw new FieldvaultError('FIELD_USAGE', { detail: '--offline and a server name together' });
        const mode = offline === true ? ({ offline: true } as const) : ({ offline: false, server: server as string | undefined, command: 'login' } as const);
        await withSession(ctx, mode, async ({ session, username, server: s }) => {
          const records = await session.countRecords();
          const config = ctx.home.update((c) => ({ ...c, currentUser: username }));
          // Records of an offline sign-up under another password: not in this database, never synced, until claimed.
          const stranded = session.unverifiedRecordsLocked
            ? {
                command: claimCommand(username, config),
                message:
                  `${username} also has an unverified database on this phone (records made after "signup" here) that this password does not open: ` +
                  'the password chosen on this phone differs from this one. Those records are NOT in the verified database and will not sync.',
              }
            : null;
          const login = s === undefined ? undefined : session.serverLogins.find((l) => l.serverId === s.entry.serverId);
          const data = {
            user: username,
            mode: s === undefined ? 'offline' : 'online',
            server: s === undefined ? null : { name: s.name, serverId: s.entry.serverId, role: login?.role ?? null },
            database: session.kind,
            keyId: session.keyId,
            keyIssuer: session.keyRecord?.issuer ?? null,
            records,
            current: true,
            unverifiedRecordsLocked: stranded === null ? null : { next: `${stranded.command} (asks this password, then the one chosen on this phone)` },
          };
          if (stranded !== null) ctx.out.note(`warning: ${stranded.message}\nMove them with: ${stranded.command}`);
          ctx.out.result(data, () =>
            keyValues([
              ['user', `${username} (remembered as current user)`],
              ['login', s === undefined ? 'offline (password checked on this phone)' : `online to ${s.name} (${s.entry.serverId}) as ${login?.role ?? '?'}`],
              ['database', `${kindLabel(session.kind)}${session.keyRecord === undefined ? '' : `, key ${session.keyId.slice(0, 12)}… from ${session.keyRecord.issuer}`}`],
              ['records', stranded === null ? String(records) : `${records} (not counting the unverified records this password does not open: see the warning)`],
              ['session', 'ended with this command: keys and tokens were in memory only'],
            ]),
          );
        });
      }),
    );

  program
    .command('logout')
    .summary('forget the current user')
    .description('Forgets the remembered current user. Keys and server tokens are never kept between commands, so there is nothing else to drop.')
    .action(
      action(async (ctx) => {
        ctx.home.lock();
        const before = ctx.home.read()?.currentUser ?? null;
        if (before !== null) ctx.home.update((c) => ({ ...c, currentUser: null }));
        ctx.out.result({ forgot: before }, () => (before === null ? 'no user was remembered' : `forgot ${before}; commands now need --user`));
      }),
    );

  program
    .command('status')
    .summary('who is logged in, databases on this phone, pending changes per server')
    .description(
      'Shows this phone (home, IMEI), the current user, the users and databases on the phone (verified, unverified, temporary per server, ' +
        'from the keyring: no password needed) and the configured servers. With a current user (or --user) it also asks the password ' +
        'to count the records you see and the changes waiting to be synced with each server; --locked skips that.',
    )
    .option('--locked', 'do not ask a password: show only what the phone shows without one')
    .action(
      action(async (ctx, raw) => {
        const { locked } = raw as { locked?: boolean };
        const opened = await openDevice(ctx);
        const { device, storage, config } = opened;
        const users = await device.users();
        const verified = await device.verifiedKeyRecord();
        const databases = databasesOf(users, verified);
        const files = (await storage.list()).length;
        const user = ctx.globals.user ?? config.currentUser;
        interface Unlocked {
          username: string;
          kind: string;
          records: number;
          known: KnownServer[];
          pending: Map<string, PendingCounts>;
        }
        let unlocked: Unlocked | undefined;
        if (user !== null && user !== undefined && locked !== true) {
          unlocked = await withSession(ctx, { offline: true }, async ({ session, username }) => {
            const pending = new Map<string, PendingCounts>();
            // An unverified database syncs with no server: its records move at the first online login.
            if (session.kind !== 'unverified') {
              for (const entry of Object.values(config.servers)) pending.set(entry.serverId, await session.pendingCounts(entry.serverId));
            }
            return { username, kind: session.kind, records: await session.countRecords(), known: await session.knownServers(), pending };
          }, opened);
        }
        const known = new Map((unlocked?.known ?? []).map((k) => [k.serverId, k]));
        const configured = Object.entries(config.servers).map(([name, e]) => ({ name, url: e.url, serverId: e.serverId }));
        const unconfigured = [...known.keys()].filter((id) => !configured.some((c) => c.serverId === id)).map((serverId) => ({ name: null, url: null, serverId }));
        // A server that is not configured (removed, or added under another id once) gets nothing
        // from this phone: its sync state is kept so that adding it back resumes where it stopped,
        // but counting "pending" work for it would grow with every record and mean nothing.
        const servers = [...configured, ...unconfigured].map((s) => {
          const k = known.get(s.serverId);
          return {
            ...s,
            configured: s.name !== null,
            trust: s.name === null ? '' : serverTrust(config, s.name),
            role: k?.role ?? null,
            lastSyncAt: k?.lastSyncAt ?? null,
            pending: s.name === null ? null : (unlocked?.pending.get(s.serverId) ?? k?.pending ?? null),
          };
        });
        const stranded = strandedUsers(users).map((username) => ({ user: username, next: claimCommand(username, config) }));
        const data = {
          home: ctx.home.dir,
          imei: config.imei,
          currentUser: config.currentUser,
          session: unlocked === undefined ? null : { user: unlocked.username, database: unlocked.kind, records: unlocked.records },
          users,
          databases,
          databaseFiles: files,
          servers,
          strandedUnverified: stranded,
        };
        ctx.out.result(data, () => {
          const lines = [
            keyValues([
              ['home', ctx.home.dir],
              ['IMEI', config.imei],
              ['current user', config.currentUser ?? '— (none remembered: pass --user, or "login")'],
              ...(unlocked === undefined ? [] : ([['unlocked as', `${unlocked.username}: ${kindLabel(unlocked.kind)} database, ${unlocked.records} record(s)`]] as [string, string][])),
            ]),
            '',
            `Databases (${files} file(s)):`,
            databases.length === 0
              ? 'none yet: "signup" creates one'
              : table(databases, [
                  { header: 'DATABASE', value: (d) => kindLabel(d.kind) },
                  { header: 'USERS', value: (d) => d.users.join(', ') },
                  { header: 'KEY', value: (d) => (d.key === undefined ? '' : `${d.key.keyId.slice(0, 12)}… from ${d.key.issuer}, ${timeOf(d.key.issuedAt)}`), max: 60 },
                ]),
            '',
            'Servers:',
            servers.length === 0
              ? 'none: add one with "servers add"'
              : table(servers, [
                  { header: 'NAME', value: (s) => s.name ?? '(not configured)' },
                  { header: 'URL', value: (s) => s.url ?? '', max: 50 },
                  { header: 'SERVER ID', value: (s) => s.serverId },
                  { header: 'LAST SYNC', value: (s) => (s.lastSyncAt === null ? (unlocked === undefined ? '' : 'never') : timeOf(s.lastSyncAt)) },
                  {
                    header: 'PENDING',
                    value: (s) =>
                      s.pending !== null
                        ? `${s.pending.records} record(s), ${s.pending.photos} photo(s)`
                        : !s.configured
                          ? 'not configured: nothing is sent to it ("servers add" it again to resume)'
                          : unlocked === undefined
                          ? '(locked: needs your password)'
                          : unlocked.kind === 'unverified'
                            ? 'all yours, after the first online login'
                            : '',
                    max: 60,
                  },
                ]),
          ];
          if (stranded.length > 0) {
            lines.push(
              '',
              'Unverified records left behind (an unverified database a user\'s current password does not open; they do not sync):',
              ...stranded.map((x) => `  ${x.user}: move them into the verified database with "${x.next}"`),
            );
          }
          return lines.join('\n');
        });
      }),
    );
}
