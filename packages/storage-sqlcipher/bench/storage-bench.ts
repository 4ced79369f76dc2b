// Encrypted storage bench (issue 4 "Performance"): (a) SQLCipher 4 through SqlCipherStorage vs plain
// SQLite for 100k inserts, 100k point reads and a local search, with the page-cache tunings the
// format allows; (b) offline login with the default Argon2id cost; (c) the SDK's migration of 100k
// records vs a bare ATTACH … KEY + INSERT … SELECT.
//
//   node dist-bench/storage-bench.js [--records 100000] [--rounds 2] [--logins 20]
//
// Real files in a temporary directory (removed at the end, also on failure). Appends its rows to
// bench-results/rows.jsonl (see @fieldvault/bench-kit) and prints them.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3-multiple-ciphers';
import { appendRows, benchRow, formatNumber, formatTable, summarize, type BenchRow } from '@fieldvault/bench-kit';
import { createDevice, ensureSchema, type OpenOptions, type StorageAdapter, type StorageHandle } from '@fieldvault/client';
import { defaultKdfParams, deriveKek, generateDbKey, keyId, kdfDefaults } from '@fieldvault/crypto';
import { formatHlc } from '@fieldvault/protocol';
import { DEFAULT_PAGE_SIZE, SqlCipherStorage } from '@fieldvault/storage-sqlcipher';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '1' },
    logins: { type: 'string', default: '20' },
  },
});
const N = Number(args.records);
const ROUNDS = Number(args.rounds);
const LOGINS = Number(args.logins);
for (const [name, v, max] of [['records', N, 1_000_000], ['rounds', ROUNDS, 10], ['logins', LOGINS, 200]] as const) {
  if (!Number.isInteger(v) || v <= 0 || v > max) throw new Error(`--${name} is out of range (1..${max})`);
}
/** A safety bound; the default run takes ~3 min on this machine. */
const HARD_LIMIT_MS = 7 * 60_000;
const SOURCE = '@fieldvault/storage-sqlcipher';
const IMEI = '490154203237518';
const PASSWORD = 'amber lantern over quiet harbour';
const SEARCH_TERMS = ['zzq', 'amina k', 'kofi 9', 'mbale', 'lira 7'];

type Db = InstanceType<typeof Database>;

const started = Date.now();
function say(text: string): void {
  process.stdout.write(`[storage-bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
}
function round(v: number, digits = 2): number {
  return Number(v.toFixed(digits));
}
function median(xs: readonly number[]): number {
  return summarize(xs).p50;
}

// ---------------------------------------------------------------------------------------------
// (a) the workload
// ---------------------------------------------------------------------------------------------

/** Same shape as the SDK's `records` table (vault-schema.ts), trimmed to what the workload uses. */
const SCHEMA = `CREATE TABLE records (
  id TEXT PRIMARY KEY NOT NULL,
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  name_search TEXT,
  location_search TEXT,
  age REAL,
  doc TEXT NOT NULL
) STRICT`;
const INSERT = 'INSERT INTO records (id, created_by, created_at, name_search, location_search, age, doc) VALUES (?, ?, ?, ?, ?, ?, ?)';
const POINT = 'SELECT doc FROM records WHERE id = ?';
/** The SDK's local search: substring match on the normalised name (RecordStore.search), newest first, one page. */
const SEARCH = 'SELECT id, doc FROM records WHERE instr(name_search, ?) > 0 ORDER BY created_at DESC LIMIT 50';

type Row = [string, string, string, string, string, number, string];

const NAMES = ['Amina', 'Kofi', 'Grace', 'Joseph', 'Fatuma', 'Peter', 'Esther', 'Moses', 'Ruth', 'Samuel'];
const PLACES = ['Gulu', 'Kitgum', 'Lira', 'Arua', 'Mbale', 'Soroti', 'Moroto', 'Hoima'];

/** ~500-byte rows: a realistic child record document (fields with per-field HLC timestamps). */
function makeRows(n: number): Row[] {
  const rows: Row[] = [];
  const t0 = Date.UTC(2026, 0, 1);
  for (let i = 0; i < n; i += 1) {
    const id = randomUUID();
    const name = `${NAMES[i % NAMES.length]} ${String.fromCharCode(65 + (i % 26))}. ${i}`;
    const place = `${PLACES[i % PLACES.length]} ${i % 97}`;
    const at = new Date(t0 + i * 1000).toISOString();
    const hlc = `${at}-0000-device${i % 7}`;
    const doc = JSON.stringify({
      id,
      createdBy: `worker${i % 50}`,
      createdAt: at,
      fields: {
        name: { v: name, t: hlc },
        age: { v: i % 18, t: hlc },
        location: { v: place, t: hlc },
        protection_concerns: { v: ['separated'], t: hlc },
        notes: { v: 'Found near the market; referred.', t: hlc },
      },
      history: [],
    });
    rows.push([id, `worker${i % 50}`, at, name.toLowerCase(), place.toLowerCase(), i % 18, doc]);
  }
  return rows;
}

interface PhaseTimes {
  insert: number;
  read: number;
  search: number;
}

/** A shuffled order of ids for the point reads, the same for every configuration. */
function readOrder(rows: readonly Row[]): string[] {
  const ids = rows.map((r) => r[0]);
  let x = 12345;
  for (let i = ids.length - 1; i > 0; i -= 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
  }
  return ids;
}

interface RawConfig {
  readonly label: string;
  readonly key: Uint8Array | undefined;
  readonly cacheKiB: number | undefined;
  /** Re-prepare the statement per call instead of reusing one (what an adapter without a cache pays). */
  readonly reprepare?: boolean;
  /**
   * Diagnostic only, never offered to apps: SQLCipher without its per-page HMAC (`hmac_use = 0`),
   * to measure how much of the cost is the HMAC-SHA512 (software in SQLite3 Multiple Ciphers,
   * which has an AES-NI path but no SHA hardware path) rather than AES.
   */
  readonly noHmac?: boolean;
}

function keyLiteral(key: Uint8Array): string {
  return `x'${Buffer.from(key).toString('hex')}'`;
}

/**
 * Opens a raw connection with exactly the pragmas SqlCipherStorage.open uses (cipher, legacy,
 * page size, key, first read; WAL, synchronous=FULL, temp_store=MEMORY, cache_size, foreign_keys);
 * the plain baseline gets the same minus cipher/legacy/key (and the same page size), so the ratio
 * isolates the encryption.
 */
function openRaw(path: string, key: Uint8Array | undefined, cacheKiB: number | undefined, noHmac = false): Db {
  const db = new Database(path);
  if (key !== undefined) {
    db.pragma(`cipher = 'sqlcipher'`);
    db.pragma('legacy = 4');
    db.pragma(`legacy_page_size = ${DEFAULT_PAGE_SIZE}`);
    if (noHmac) db.pragma('hmac_use = 0');
    db.pragma(`key = "${keyLiteral(key)}"`);
  } else {
    db.pragma(`page_size = ${DEFAULT_PAGE_SIZE}`);
  }
  db.pragma('user_version');
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('temp_store = MEMORY');
  if (cacheKiB !== undefined) db.pragma(`cache_size = -${cacheKiB}`);
  db.pragma('foreign_keys = ON');
  return db;
}

function runRaw(dir: string, c: RawConfig, rows: readonly Row[], order: readonly string[]): PhaseTimes {
  const path = join(dir, `raw-${randomUUID()}.db`);
  let db = openRaw(path, c.key, c.cacheKiB, c.noHmac === true);
  db.exec(SCHEMA);
  let t = performance.now();
  const ins = db.prepare(INSERT);
  db.transaction(() => {
    for (const r of rows) (c.reprepare === true ? db.prepare(INSERT) : ins).run(...r);
  })();
  const insert = performance.now() - t;
  db.close();
  // Reads start from a fresh connection (cold page cache, warm OS cache): what an app sees after login.
  db = openRaw(path, c.key, c.cacheKiB, c.noHmac === true);
  t = performance.now();
  const get = db.prepare(POINT);
  let found = 0;
  for (const id of order) if ((c.reprepare === true ? db.prepare(POINT) : get).get(id) !== undefined) found += 1;
  const read = performance.now() - t;
  if (found !== order.length) throw new Error(`${c.label}: ${found} of ${order.length} point reads found their row`);
  t = performance.now();
  const s = db.prepare(SEARCH);
  for (const term of SEARCH_TERMS) s.all(term);
  const search = performance.now() - t;
  db.close();
  rmSync(path, { force: true });
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  return { insert, read, search };
}

/** The same workload through the adapter apps use: SqlCipherStorage handles, its transaction and statement cache. */
async function runAdapter(dir: string, cacheKiB: number | undefined, rows: readonly Row[], order: readonly string[]): Promise<PhaseTimes> {
  const storage = new SqlCipherStorage(cacheKiB === undefined ? { directory: dir } : { directory: dir, cacheSizeKiB: cacheKiB });
  const name = `adapter${randomUUID().replace(/-/g, '')}`;
  const key = generateDbKey();
  let h: StorageHandle = await storage.open(name, key, { create: true });
  await h.execute(SCHEMA);
  let t = performance.now();
  await h.transaction(async (tx) => {
    for (const r of rows) await tx.execute(INSERT, r);
  });
  const insert = performance.now() - t;
  await h.close();
  h = await storage.open(name, key, { create: false });
  t = performance.now();
  let found = 0;
  for (const id of order) if ((await h.query(POINT, [id])).length === 1) found += 1;
  const read = performance.now() - t;
  if (found !== order.length) throw new Error(`adapter: ${found} of ${order.length} point reads found their row`);
  t = performance.now();
  for (const term of SEARCH_TERMS) await h.query(SEARCH, [term]);
  const search = performance.now() - t;
  await h.close();
  await storage.remove(name);
  return { insert, read, search };
}

/** Whether mmap is used for an encrypted database (SQLite3 Multiple Ciphers disables it for ciphers). */
function mmapProbe(dir: string): { plain: number; encrypted: number } {
  const probe = (key: Uint8Array | undefined): number => {
    const path = join(dir, `mmap-${randomUUID()}.db`);
    const db = openRaw(path, key, undefined);
    db.exec('CREATE TABLE t (x)');
    db.pragma('mmap_size = 268435456');
    const v = Number(db.pragma('mmap_size', { simple: true }));
    db.close();
    for (const s of ['', '-wal', '-shm']) rmSync(`${path}${s}`, { force: true });
    return v;
  };
  return { plain: probe(undefined), encrypted: probe(generateDbKey()) };
}

// ---------------------------------------------------------------------------------------------
// (b) offline login, (c) migration: helpers
// ---------------------------------------------------------------------------------------------

/** Wraps the adapter to see the keys the SDK opens its databases with (the bench needs the source's). */
class KeySpy implements StorageAdapter {
  readonly keys = new Map<string, Uint8Array>();
  constructor(readonly inner: SqlCipherStorage) {}
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  open(name: string, key: Uint8Array, options: OpenOptions): Promise<StorageHandle> {
    this.keys.set(name, Uint8Array.from(key));
    return this.inner.open(name, key, options);
  }
  remove(name: string): Promise<void> {
    return this.inner.remove(name);
  }
  list(): Promise<string[]> {
    return this.inner.list();
  }
}

/** The diagnostic step that isolates the HMAC's share of the cost (see RawConfig.noHmac). */
const NO_HMAC_LABEL = 'raw SQLCipher without page HMAC (diagnostic only, not offered), default 2 MB cache';

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'fieldvault-storage-bench-'));
  const hardLimit = setTimeout(() => {
    process.stderr.write(`storage bench: still running after ${HARD_LIMIT_MS / 60_000} min, giving up\n`);
    rmSync(work, { recursive: true, force: true });
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardLimit.unref();
  const loadBefore = round(loadavg()[0] ?? 0);
  if (loadBefore > 0.5) say(`note: load average ${loadBefore} before the bench — other work on this machine adds noise`);
  try {
    const rows: BenchRow[] = [];
    const data = makeRows(N);
    const order = readOrder(data);
    const avgBytes = Math.round(data.reduce((a, r) => a + r[6].length + r[3].length + r[4].length + 90, 0) / data.length);
    say(`${N} rows of ~${avgBytes} B; ${ROUNDS} interleaved rounds per configuration`);

    // ---- (a) tuning ladder ------------------------------------------------------------------
    const mmap = mmapProbe(work);
    // The pragma is accepted on an encrypted database, but SQLite3 Multiple Ciphers' pager only
    // uses the mmap page getter when no codec is attached (setGetterMethod: `USEFETCH(pPager) &&
    // sqlite3mcPagerHasCodec(pPager) == 0`), so encrypted pages are always read and decrypted.
    say(`mmap_size after setting 256 MiB: plain ${mmap.plain}, encrypted ${mmap.encrypted} (accepted, but unused with a codec: every page is read and decrypted)`);
    const key = generateDbKey();
    type Step = { label: string; run: () => Promise<PhaseTimes> | PhaseTimes; baseline: () => PhaseTimes };
    const plain = (cacheKiB: number | undefined): (() => PhaseTimes) => () => runRaw(work, { label: 'plain', key: undefined, cacheKiB }, data, order);
    const steps: Step[] = [
      { label: 'raw SQLCipher, default 2 MB cache, statement re-prepared per call', run: () => runRaw(work, { label: 'enc', key, cacheKiB: undefined, reprepare: true }, data, order), baseline: plain(undefined) },
      { label: 'raw SQLCipher, default 2 MB cache, prepared statement reused', run: () => runRaw(work, { label: 'enc', key, cacheKiB: undefined }, data, order), baseline: plain(undefined) },
      { label: 'raw SQLCipher, 32 MiB cache', run: () => runRaw(work, { label: 'enc', key, cacheKiB: 32768 }, data, order), baseline: plain(32768) },
      { label: 'raw SQLCipher, 128 MiB cache', run: () => runRaw(work, { label: 'enc', key, cacheKiB: 131072 }, data, order), baseline: plain(131072) },
      { label: NO_HMAC_LABEL, run: () => runRaw(work, { label: 'enc-nohmac', key, cacheKiB: undefined, noHmac: true }, data, order), baseline: plain(undefined) },
      { label: 'SqlCipherStorage (adapter, its default cache)', run: () => runAdapter(work, undefined, data, order), baseline: plain(8192) },
      { label: 'SqlCipherStorage (adapter, cacheSizeKiB 128 MiB)', run: () => runAdapter(work, 131072, data, order), baseline: plain(131072) },
    ];
    const results = new Map<string, { ours: PhaseTimes[]; base: PhaseTimes[] }>();
    for (let round_ = 1; round_ <= ROUNDS; round_ += 1) {
      for (const step of round_ % 2 === 1 ? steps : [...steps].reverse()) {
        const r = results.get(step.label) ?? { ours: [], base: [] };
        // Alternate which side runs first, so drift weighs on both.
        if (round_ % 2 === 1) {
          r.ours.push(await step.run());
          r.base.push(step.baseline());
        } else {
          r.base.push(step.baseline());
          r.ours.push(await step.run());
        }
        results.set(step.label, r);
      }
      say(`(a) round ${round_}/${ROUNDS} done`);
    }
    const med = (xs: PhaseTimes[], k: keyof PhaseTimes): number => median(xs.map((x) => x[k]));
    const ladder: string[] = [];
    for (const step of steps) {
      const r = results.get(step.label);
      if (r === undefined) continue;
      const parts = (['insert', 'read', 'search'] as const).map((k) => {
        const o = med(r.ours, k);
        const b = med(r.base, k);
        return `${k} ${formatNumber(o)}/${formatNumber(b)} ms = ${formatNumber(o / b)}×`;
      });
      const line = `${step.label}: ${parts.join(', ')}`;
      ladder.push(line);
      say(`(a) ${line}`);
    }
    const adapterLabel = 'SqlCipherStorage (adapter, its default cache)';
    const adapter = results.get(adapterLabel);
    if (adapter === undefined) throw new Error('adapter run missing');
    const detailsA: Record<string, number | string> = {
      records: N,
      avgRowBytes: avgBytes,
      rounds: ROUNDS,
      ours: 'SqlCipherStorage (SQLCipher 4, HMAC-SHA512, raw key, WAL, synchronous=FULL, its default cache_size)',
      baseline: 'better-sqlite3-multiple-ciphers without key, same pragmas (WAL, synchronous=FULL, same cache_size), prepared statements',
      mmapPlain: mmap.plain,
      mmapEncrypted: mmap.encrypted,
      loadAverageBefore: loadBefore,
    };
    steps.forEach((s, i) => {
      detailsA[`step${i + 1}`] = ladder[i] ?? s.label;
    });
    const rawBest = results.get('raw SQLCipher, 128 MiB cache');
    const noHmac = results.get(NO_HMAC_LABEL);
    const big = results.get('SqlCipherStorage (adapter, cacheSizeKiB 128 MiB)');
    const workloadRow = (k: keyof PhaseTimes, title: string, goalNote: (ratio: number) => string): BenchRow => {
      const row = benchRow({
        workload: title,
        ours: med(adapter.ours, k),
        oursUnit: 'ms',
        baseline: med(adapter.base, k),
        baselineUnit: 'ms',
        goal: { op: '<=', ratio: 1.1 },
        source: SOURCE,
        details: {
          ...detailsA,
          raw128MiBRatio: rawBest === undefined ? 'n/a' : round(med(rawBest.ours, k) / med(rawBest.base, k), 3),
          adapter128MiBRatio: big === undefined ? 'n/a' : round(med(big.ours, k) / med(big.base, k), 3),
          rawNoHmacRatio: noHmac === undefined ? 'n/a' : round(med(noHmac.ours, k) / med(noHmac.base, k), 3),
        },
      });
      if (row.met) return row;
      // The same-run diagnostic says how much of the miss is the page HMAC rather than AES.
      const hmacShare = noHmac === undefined ? '' : `; without the page HMAC the raw run is ${formatNumber(med(noHmac.ours, k) / med(noHmac.base, k))}× (HMAC-SHA512 runs in software: SQLite3 Multiple Ciphers has AES-NI but no SHA hardware path)`;
      return { ...row, note: `${goalNote(row.ratio)}${hmacShare}` };
    };
    rows.push(
      workloadRow('insert', `(a) ${N / 1000}k inserts, 1 tx, SQLCipher 4 vs plain`, () =>
        'every page written is encrypted (AES-256-CBC) and HMAC-SHA512-signed on its way to the WAL — CPU the plain file does not spend; a larger cache does not avoid it, and the adapter adds an await per statement (see details)'),
      workloadRow('read', `(a) ${N / 1000}k point reads by id, SQLCipher 4 vs plain`, () =>
        'each page-cache miss decrypts and HMAC-checks an 8 KiB page (twice the bytes of a 4 KiB one, so a random read costs more than with 4 KiB pages while inserts, scans and the pull cost less); the cache cuts misses but a cold open still reads the whole table once, and mmap is unavailable for encrypted databases; the adapter adds a promise per query'),
      workloadRow('search', `(a) local search (5 × scan of name_search), SQLCipher 4 vs plain`, () =>
        'a full scan decrypts every page of the table that is not already in the page cache'),
    );

    // ---- (b) offline login ------------------------------------------------------------------
    {
      const dir = join(work, 'login');
      mkdirSync(dir);
      const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
      const device = await createDevice({ directory: dir, imei: IMEI, storage }); // default kdf
      await device.signUpOffline('amina', PASSWORD);
      const s0 = await device.loginOffline('amina', PASSWORD);
      for (let i = 0; i < 50; i += 1) await s0.createRecord({ name: `Amina ${i}`, age: 7, location: 'Gulu' });
      await s0.logout();
      const login: number[] = [];
      const kdf: number[] = [];
      for (let i = 0; i < LOGINS; i += 1) {
        // Interleaved: one login, one raw Argon2id at the same parameters.
        let t = performance.now();
        const s = await device.loginOffline('amina', PASSWORD);
        const page = await s.listRecords();
        login.push(performance.now() - t);
        if (page.length === 0) throw new Error('login: first query returned nothing');
        await s.logout();
        t = performance.now();
        (await deriveKek(PASSWORD, defaultKdfParams())).fill(0);
        kdf.push(performance.now() - t);
      }
      await device.logout();
      const l = summarize(login);
      const k = summarize(kdf);
      const ratio = l.p95 / k.p95;
      say(`(b) offline login p50 ${formatNumber(l.p50)} ms, p95 ${formatNumber(l.p95)} ms; raw Argon2id p50 ${formatNumber(k.p50)} ms, p95 ${formatNumber(k.p95)} ms`);
      // The goal is absolute (≤ 250 ms p95): expressed as a ratio to 250 ms so the table can judge it.
      const row = benchRow({
        workload: `(b) offline login p95 (loginOffline + first listRecords, ${LOGINS} samples)`,
        ours: l.p95,
        oursUnit: 'ms',
        baseline: 250,
        baselineUnit: 'ms (goal)',
        goal: { op: '<=', ratio: 1 },
        source: SOURCE,
        details: {
          samples: LOGINS,
          argon2: `m=${kdfDefaults.m}KiB t=${kdfDefaults.t} p=${kdfDefaults.p}`,
          loginP50Ms: round(l.p50),
          loginP95Ms: round(l.p95),
          loginMaxMs: round(l.max),
          rawArgon2idP50Ms: round(k.p50),
          rawArgon2idP95Ms: round(k.p95),
          loginOverArgon2idP95: round(ratio, 3),
        },
      });
      rows.push({
        ...row,
        note: `${row.met ? '' : 'MISSED: '}p50 ${formatNumber(l.p50)} ms; raw Argon2id at the same cost p50 ${formatNumber(k.p50)} / p95 ${formatNumber(k.p95)} ms, so the KDF is ${formatNumber((100 * k.p50) / l.p50)} % of a login (the rest: keyring read, unwrap, equal-timing, SQLCipher open, first query)`,
      });
    }

    // ---- (c) migration ----------------------------------------------------------------------
    {
      const dir = join(work, 'migration');
      mkdirSync(dir);
      const dbDir = join(dir, 'databases');
      const inner = new SqlCipherStorage({ directory: dbDir });
      const spy = new KeySpy(inner);
      const steps: { step: string; at: number }[] = [];
      const device = await createDevice({
        directory: dir,
        imei: IMEI,
        storage: spy,
        onMigrationStep: (e) => {
          steps.push({ step: e.step, at: performance.now() });
        },
      });
      await device.signUpOffline('amina', PASSWORD);
      const s = await device.loginOffline('amina', PASSWORD);
      const sample = await s.createRecord({
        name: 'Amina Kato',
        age: 9,
        sex: 'female',
        location: 'Gulu, Laroo division',
        caregiver: 'Grace Kato (aunt)',
        protection_concerns: ['separated', 'unaccompanied'],
        notes: 'Found near the market; referred to the health post; follow-up visit planned.',
      });
      const sourceName = [...spy.keys.keys()][0];
      const sourceKey = sourceName === undefined ? undefined : spy.keys.get(sourceName);
      if (sourceName === undefined || sourceKey === undefined) throw new Error('migration: the unverified database was not seen');
      // Fill the unverified database to N records shaped exactly like the SDK's (cloned from the
      // one created above, each with its own id), through the session's own handle.
      await s.logout();
      {
        const db = openRaw(inner.pathOf(sourceName), sourceKey, 8192);
        const row = db.prepare('SELECT * FROM records WHERE id = ?').get(sample.id) as Record<string, unknown> | undefined;
        if (row === undefined) throw new Error('migration: sample record missing');
        const cols = Object.keys(row);
        const ins = db.prepare(`INSERT INTO records (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
        const doc = String(row.doc);
        db.transaction(() => {
          for (let i = 1; i < N; i += 1) {
            const id = randomUUID();
            ins.run(...cols.map((c) => (c === 'id' ? id : c === 'doc' ? doc.replaceAll(sample.id, id) : c === 'local_seq' ? i + 1 : row[c])));
          }
        })();
        const n = Number(db.prepare('SELECT count(*) FROM records').pluck().get());
        if (n !== N) throw new Error(`migration: source holds ${n} records, not ${N}`);
        db.pragma('wal_checkpoint(TRUNCATE)');
        db.close();
      }
      // The same source for the bare baseline: a byte copy of the file.
      const bareSource = join(dir, 'bare-source.db');
      copyFileSync(inner.pathOf(sourceName), bareSource);

      // Ours: the real flow-1 migration — the user becomes verified (adoptVerifiedKey), the device
      // journals a move and runs it (photos, ONE transaction of merge + INSERT … SELECT, delete the
      // moved rows from the source).
      const verifiedKey = generateDbKey();
      const keyRecord = { imei: IMEI, keyId: keyId(verifiedKey), issuedAt: formatHlc({ wall: Date.now(), counter: 0, node: 'bench-server' }), issuer: 'bench-server' };
      const t0 = performance.now();
      const session = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD, serverId: 'bench-server', keyRecord, key: verifiedKey });
      const tEnd = performance.now();
      const count = (await session.listRecords({ limit: 1 })).length;
      await session.logout();
      await device.logout();
      if (count !== 1) throw new Error('migration: target holds no records after the move');
      const at = (step: string): number => {
        const e = steps.find((x) => x.step === step);
        if (e === undefined) throw new Error(`migration: step ${step} not reported (saw ${steps.map((x) => x.step).join(', ')})`);
        return e.at;
      };
      const copyMs = at('records-copied') - at('journal-written');
      const moveMs = at('journal-cleared') - at('journal-written');
      const adoptMs = tEnd - t0;

      // Baseline: a fresh target with the SDK schema, bare ATTACH … KEY + INSERT … SELECT of the
      // same rows in one transaction, same pragmas (WAL, synchronous=FULL), same machine.
      const bareTargetKey = generateDbKey();
      const bareStorage = new SqlCipherStorage({ directory: join(dir, 'bare') });
      const th = await bareStorage.open('target', bareTargetKey, { create: true });
      await ensureSchema(th);
      await th.close();
      const bare = openRaw(bareStorage.pathOf('target'), bareTargetKey, 8192);
      const b0 = performance.now();
      bare.prepare('ATTACH DATABASE ? AS src KEY ?').run(bareSource, keyLiteral(sourceKey));
      bare.pragma('src.synchronous = FULL');
      bare.transaction(() => {
        bare.prepare('INSERT INTO main.records SELECT * FROM src.records WHERE created_by = ?').run('amina');
      })();
      bare.exec('DETACH DATABASE src');
      const bareMs = performance.now() - b0;
      const bareN = Number(bare.prepare('SELECT count(*) FROM records').pluck().get());
      bare.close();
      if (bareN !== N) throw new Error(`migration baseline copied ${bareN} records, not ${N}`);
      // Attribution: the same bare copy with the SDK's duplicate guard (NOT EXISTS on the target's
      // primary key per source row), on a second fresh target.
      const guardKey = generateDbKey();
      const gh = await bareStorage.open('guarded', guardKey, { create: true });
      await ensureSchema(gh);
      await gh.close();
      const guarded = openRaw(bareStorage.pathOf('guarded'), guardKey, 8192);
      const g0 = performance.now();
      guarded.prepare('ATTACH DATABASE ? AS src KEY ?').run(bareSource, keyLiteral(sourceKey));
      guarded.pragma('src.synchronous = FULL');
      guarded.transaction(() => {
        guarded
          .prepare('INSERT INTO main.records SELECT * FROM src.records s WHERE NOT EXISTS (SELECT 1 FROM main.records m WHERE m.id = s.id) AND s.created_by = ?')
          .run('amina');
      })();
      guarded.exec('DETACH DATABASE src');
      const guardedMs = performance.now() - g0;
      guarded.close();
      say(`(c) SDK move: attach→records-copied ${formatNumber(copyMs)} ms, whole move ${formatNumber(moveMs)} ms, adoptVerifiedKey ${formatNumber(adoptMs)} ms; bare ATTACH + INSERT … SELECT ${formatNumber(bareMs)} ms, with NOT EXISTS guard ${formatNumber(guardedMs)} ms`);
      const row = benchRow({
        workload: `(c) migration of ${N / 1000}k records (SDK move) vs bare ATTACH + INSERT … SELECT`,
        ours: copyMs,
        oursUnit: 'ms',
        baseline: bareMs,
        baselineUnit: 'ms',
        goal: { op: '<=', ratio: 1.3 },
        source: SOURCE,
        details: {
          records: N,
          oursFrom: 'journal-written → records-copied (attach, photo step, merge check, INSERT … SELECT, commit)',
          wholeMoveMs: round(moveMs),
          adoptVerifiedKeyMs: round(adoptMs),
          deleteMovedRowsMs: round(at('source-records-deleted') - at('source-photos-deleted')),
          bareMs: round(bareMs),
          bareWithNotExistsGuardMs: round(guardedMs),
        },
      });
      rows.push({
        ...row,
        note: `${row.met ? '' : 'MISSED: '}the bare copy with the SDK's NOT EXISTS duplicate guard took ${formatNumber(guardedMs)} ms (${formatNumber(guardedMs / bareMs)}×); the whole move (incl. deleting the ${N / 1000}k moved rows from the source, which the bare copy does not do) took ${formatNumber(moveMs)} ms, ${formatNumber(moveMs / bareMs)}× the bare copy; adoptVerifiedKey end to end (Argon2id wrap, keyring writes, open) ${formatNumber(adoptMs)} ms`,
      });
    }

    appendRows(rows);
    process.stdout.write(`\n${formatTable(rows)}\n\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    clearTimeout(hardLimit);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`storage bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
