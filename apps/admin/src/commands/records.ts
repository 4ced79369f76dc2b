import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { isHlc, parseHlc, SHA256_HEX_PATTERN, UUID_V4_PATTERN, type AdminRecordProvenance, type AdminRecordVersion } from '@fieldvault/protocol';
import { makeContext, type Context } from '../context.js';
import { CliError } from '../errors.js';
import { Home } from '../home.js';
import { keyValues, table, timeOf } from '../output.js';
import type { Action } from './action.js';

/*
 * Do two servers hold the same records? (multi-server audit M4; docs/admin-cli.md, "Comparing
 * servers"). `records digest` asks the logged-in server for the digest of its records' content
 * (GET /v1/admin/records/digest: what every server and phone agree on once converged, none of
 * what a server stamps around a record); `--list` adds the digest of every record.
 * `records diff A B` compares two servers record by record, each given as an admin home logged
 * in to it or as a saved `records digest --list --json`: it walks both lists in id order, a page
 * at a time, and names the records only one side holds and those that differ.
 *
 * `records show ID` answers "who sent this record, from which phone, when" (admin audit c-report
 * F3; GET /v1/admin/records/:id): the server's stamps, the ends of its history, its conflict and
 * photo counts. Record ids, names, IMEIs and times only: the server never sends a field value.
 */

/** Record digests per request: the server's largest page. */
const PAGE = 1000;

const SAME_WORDS = 'Equal digests on two servers mean the same records with the same content.';
const SCOPE_WORDS = 'Only what phones sync is compared (fields, history, photos, deletions, resolutions), not who pushed a record to this server or when.';

interface Summary {
  readonly count: number;
  readonly deleted: number;
  readonly digest: string;
}

export interface DigestEntry {
  readonly id: string;
  readonly digest: string;
  readonly deleted: boolean;
  /** HLC of the record's newest change. */
  readonly updatedAt: string;
}

/**
 * Folds entries in id order into a summary, as the server does (server records-digest/digest.ts:
 * SHA-256 over one `<id> <record digest>\n` line per record).
 */
class Fold {
  private readonly hash = createHash('sha256');
  private count = 0;
  private deleted = 0;
  add(e: DigestEntry): void {
    this.hash.update(`${e.id} ${e.digest}\n`, 'utf8');
    this.count += 1;
    if (e.deleted) this.deleted += 1;
  }
  summary(): Summary {
    return { count: this.count, deleted: this.deleted, digest: this.hash.digest('hex') };
  }
}

/** An HLC as a time for people (its wall clock part). */
function whenOf(hlc: string): string {
  return isHlc(hlc) ? timeOf(new Date(parseHlc(hlc).wall).toISOString()) : hlc;
}

const NO_VALUES_WORDS = 'Field values are not shown: only who, from which phone, when, and counts.';

function recordId(value: string): string {
  if (!UUID_V4_PATTERN.test(value)) throw new CliError('ADMIN_USAGE', `"${value}" is not a record id (a lowercase UUID, as "records digest --list" prints them)`);
  return value;
}

/** A version's time is its HLC: the clock of the phone that wrote it, not the server's. */
function versionLine(v: AdminRecordVersion | null): string {
  return v === null ? '—' : `${whenOf(v.ts)} (phone clock) by ${v.by} on ${v.device}`;
}

function provenanceLines(r: AdminRecordProvenance): string {
  const conflicts = r.openConflicts === 0 ? 'none open' : `${r.openConflicts} open: needs review by a supervisor`;
  return keyValues([
    ['record', r.id],
    ['deleted', r.deleted ? 'yes' : 'no'],
    ['created', `by ${r.createdBy} on ${r.createdFrom}, ${whenOf(r.createdAt)} (phone clock)`],
    ['first pushed', `by ${r.firstPushedBy}, received ${timeOf(r.firstReceivedAt)}`],
    ['last pushed', `by ${r.pushedBy} from ${r.pushedFrom}, received ${timeOf(r.receivedAt)}`],
    ['versions', String(r.versions)],
    ['first version', versionLine(r.firstVersion)],
    ['last version', versionLine(r.lastVersion)],
    ['conflicts', `${conflicts} (${r.resolvedConflicts} resolved)`],
    ['photos', r.photosRemoved === 0 ? String(r.photos) : `${r.photos} (${r.photosRemoved} removed)`],
  ]);
}

function summaryLines(server: string, s: Summary): string {
  return keyValues([
    ['server', server],
    ['records', `${s.count} (${s.deleted} deleted)`],
    ['digest', s.digest],
  ]);
}

/** Every record digest of the logged-in server of `ctx`, a page at a time, in id order. */
async function* serverEntries(ctx: Context, onPage?: (n: number) => void): AsyncGenerator<DigestEntry> {
  let cursor: string | null = null;
  let seen = 0;
  do {
    const qs = new URLSearchParams({ limit: String(PAGE) });
    if (cursor !== null) qs.set('cursor', cursor);
    const page: { records: DigestEntry[]; nextCursor: string | null } = await ctx.api({ method: 'GET', path: `/v1/admin/records/digests?${qs.toString()}` });
    yield* page.records;
    seen += page.records.length;
    onPage?.(seen);
    cursor = page.nextCursor;
  } while (cursor !== null);
}

function isEntry(v: unknown): v is DigestEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e['id'] === 'string' && UUID_V4_PATTERN.test(e['id']) && typeof e['digest'] === 'string' && SHA256_HEX_PATTERN.test(e['digest']) &&
    typeof e['deleted'] === 'boolean' && typeof e['updatedAt'] === 'string';
}

/** One side of a diff: where it comes from, the server it names, and its entries in id order. */
interface Side {
  readonly source: string;
  readonly server: string;
  readonly entries: AsyncIterable<DigestEntry>;
}

/**
 * A saved `records digest --list --json`: checked whole (an edited or cut file would compare wrong).
 * @throws ADMIN_FILE_UNREADABLE
 */
function fileSide(file: string): Side {
  const notOurs = (why: string): CliError => new CliError('ADMIN_FILE_UNREADABLE', `${file}: ${why}; save one with "fieldvault-admin records digest --list --json > FILE"`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw notOurs('not a JSON file');
  }
  const d = data as { server?: unknown; digest?: unknown; records?: unknown };
  if (typeof d !== 'object' || d === null || !Array.isArray(d.records) || !d.records.every(isEntry)) throw notOurs('no "records" list of record digests (made without --list?)');
  const records = d.records;
  for (let i = 1; i < records.length; i += 1) if (!((records[i - 1] as DigestEntry).id < (records[i] as DigestEntry).id)) throw notOurs('the records are not in id order');
  const fold = new Fold();
  for (const e of records) fold.add(e);
  // A list without its digest could not be checked: taking it as is would let an edit through.
  if (typeof d.digest !== 'string') throw notOurs('no "digest" of its records to check them against (edited?)');
  if (d.digest !== fold.summary().digest) throw notOurs('its digest does not match its records (edited?)');
  return { source: file, server: typeof d.server === 'string' ? d.server : '?', entries: (async function* () { yield* records; })() };
}

/**
 * An admin home logged in to a server: its records listed live, with its own session.
 * @throws ADMIN_NOT_LOGGED_IN naming the home
 */
function homeSide(ctx: Context, dir: string): Side {
  const other = makeContext({ env: ctx.env, home: new Home(dir), out: ctx.out, prompter: ctx.prompter, globals: ctx.globals });
  let server: string;
  try {
    server = other.authed().client.url;
  } catch (err) {
    if (err instanceof CliError && err.code === 'ADMIN_NOT_LOGGED_IN') throw new CliError('ADMIN_NOT_LOGGED_IN', `home ${dir}${err.detail === undefined ? '' : `: ${err.detail}`}; run "fieldvault-admin --home ${dir} login"`);
    throw err;
  }
  return { source: dir, server, entries: serverEntries(other) };
}

function sideOf(ctx: Context, arg: string): Side {
  let dir: boolean;
  try {
    dir = statSync(arg).isDirectory();
  } catch {
    throw new CliError('ADMIN_FILE_UNREADABLE', `${arg}: neither an admin home directory nor a saved "records digest --list --json"`);
  }
  return dir ? homeSide(ctx, arg) : fileSide(arg);
}

export interface Difference {
  readonly id: string;
  /** The record on A and on B; null where that side does not hold it. */
  readonly a: Omit<DigestEntry, 'id'> | null;
  readonly b: Omit<DigestEntry, 'id'> | null;
}

/** Walks both sides in id order (one page of each in memory) and collects what differs. */
async function compare(a: Side, b: Side): Promise<{ a: Summary; b: Summary; differences: Difference[] }> {
  const ia = a.entries[Symbol.asyncIterator]();
  const ib = b.entries[Symbol.asyncIterator]();
  const fa = new Fold();
  const fb = new Fold();
  const differences: Difference[] = [];
  const strip = ({ id: _id, ...rest }: DigestEntry): Omit<DigestEntry, 'id'> => rest;
  let ea = await ia.next();
  let eb = await ib.next();
  while (ea.done !== true || eb.done !== true) {
    const x = ea.done === true ? undefined : ea.value;
    const y = eb.done === true ? undefined : eb.value;
    if (x !== undefined && (y === undefined || x.id < y.id)) {
      fa.add(x);
      differences.push({ id: x.id, a: strip(x), b: null });
      ea = await ia.next();
    } else if (y !== undefined && (x === undefined || y.id < x.id)) {
      fb.add(y);
      differences.push({ id: y.id, a: null, b: strip(y) });
      eb = await ib.next();
    } else if (x !== undefined && y !== undefined) {
      fa.add(x);
      fb.add(y);
      if (x.digest !== y.digest) differences.push({ id: x.id, a: strip(x), b: strip(y) });
      ea = await ia.next();
      eb = await ib.next();
    }
  }
  return { a: fa.summary(), b: fb.summary(), differences };
}

function state(e: Omit<DigestEntry, 'id'> | null): string {
  if (e === null) return 'missing';
  return `${e.deleted ? 'deleted, ' : ''}changed ${whenOf(e.updatedAt)}`;
}

export function registerRecordsCommands(program: Command, action: Action): void {
  const records = program
    .command('records')
    .description('records without their values: who pushed one (show), digest of the logged-in server, diff of two servers');

  records
    .command('show')
    .description(`who pushed one record, from which phone and when (first and last push), its creator, number of versions, conflicts and photos. ${NO_VALUES_WORDS}`)
    .argument('<id>', 'record id (a lowercase UUID)')
    .action(
      action(async (ctx, id) => {
        const { record } = await ctx.api<{ record: AdminRecordProvenance }>({ method: 'GET', path: `/v1/admin/records/${recordId(id as string)}` });
        ctx.out.result({ record }, () => `${provenanceLines(record)}\n\n${NO_VALUES_WORDS}`);
      }),
    );

  records
    .command('digest')
    .description('count and SHA-256 digest of the content of every record on the logged-in server (equal on servers that converged)')
    .option('--list', 'also the digest of every record (save it with --json to diff later)')
    .action(
      action(async (ctx, opts) => {
        const o = opts as { list?: boolean };
        const server = ctx.authed().client.url;
        const total = await ctx.api<Summary>({ method: 'GET', path: '/v1/admin/records/digest' });
        if (o.list !== true) {
          ctx.out.result({ server, ...total }, () => `${summaryLines(server, total)}\n\n${SAME_WORDS}\n${SCOPE_WORDS}`);
          return;
        }
        const progress = ctx.progress();
        const list: DigestEntry[] = [];
        const fold = new Fold();
        try {
          for await (const e of serverEntries(ctx, (n) => progress.update({ label: 'records', done: n, total: Math.max(n, total.count) }))) {
            list.push(e);
            fold.add(e);
          }
        } finally {
          progress.stop();
        }
        // The list and the total are two reads: a push in between makes them disagree.
        const listed = fold.summary();
        const changed = listed.digest !== total.digest;
        if (changed) ctx.out.note('The records changed while they were listed (phones are syncing): the digest shown is the list\'s. Run again when phones are quiet.');
        ctx.out.result({ server, ...listed, records: list }, () =>
          `${summaryLines(server, listed)}\n\n${table(list, [
            { header: 'RECORD', value: (e) => e.id },
            { header: 'DELETED', value: (e) => (e.deleted ? 'yes' : '') },
            { header: 'LAST CHANGE', value: (e) => whenOf(e.updatedAt) },
            { header: 'DIGEST', value: (e) => e.digest, max: 64 },
          ])}\n\n${SAME_WORDS}\n${SCOPE_WORDS}`,
        );
      }),
    );

  records
    .command('diff')
    .description('which records differ between two servers, each an admin home logged in to it or a saved "records digest --list --json"')
    .argument('<a>', 'admin home directory (logged in) or saved list of server A')
    .argument('<b>', 'admin home directory (logged in) or saved list of server B')
    .action(
      action(async (ctx, a, b) => {
        const sa = sideOf(ctx, a as string);
        const sb = sideOf(ctx, b as string);
        const { a: ta, b: tb, differences } = await compare(sa, sb);
        const equal = differences.length === 0;
        const side = (s: Side, t: Summary): Record<string, unknown> => ({ source: s.source, server: s.server, ...t });
        ctx.out.result({ equal, a: side(sa, ta), b: side(sb, tb), differences }, () => {
          const head = table(
            [
              ['A', sa, ta],
              ['B', sb, tb],
            ] as const,
            [
              { header: '', value: ([n]) => n },
              { header: 'FROM', value: ([, s]) => s.source, max: 60 },
              { header: 'SERVER', value: ([, s]) => s.server, max: 60 },
              { header: 'RECORDS', value: ([, , t]) => `${t.count} (${t.deleted} deleted)` },
              { header: 'DIGEST', value: ([, , t]) => t.digest, max: 64 },
            ],
          );
          if (equal) return `${head}\n\nequal: A and B hold the same ${ta.count} records with the same content.`;
          const rows = table(differences, [
            { header: 'RECORD', value: (d) => d.id },
            { header: 'ON A', value: (d) => state(d.a), max: 60 },
            { header: 'ON B', value: (d) => state(d.b), max: 60 },
          ]);
          const onlyA = differences.filter((d) => d.b === null).length;
          const onlyB = differences.filter((d) => d.a === null).length;
          const both = differences.length - onlyA - onlyB;
          return (
            `${head}\n\nnot equal: ${onlyA} only on A, ${onlyB} only on B, ${both} with different content\n\n${rows}\n\n` +
            'A record missing on a server, or older there, reaches it with the next sync of a phone that holds it.'
          );
        });
      }),
    );
}
