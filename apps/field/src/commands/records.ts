import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { DEFAULT_PAGE_SIZE, DEFAULT_PHOTO_MAX_BYTES, MAX_PAGE_SIZE, RECORD_FLAGS, detectPhotoType, stripImageMetadata, type RecordFlag, type RecordQuery, type Session, type Transport } from '@fieldvault/client';
import { FieldvaultError, SEARCH_MAX_LIMIT, conflictId, isFieldvaultError, openConflicts, type ChildRecord, type RecordSearchQuery } from '@fieldvault/protocol';
import { readArgFile, serverOf, withSession, type Context } from '../context.js';
import { fieldError } from '../errors.js';
import { addFieldOptions, fieldValuesFrom, optionOf, withFieldsFile } from '../fields.js';
import { bytes } from '../output.js';
import { conflictsOf, findRecord, findRecordToChange, historyOf, recordDetails, recordTable, resolutionsOf, shortId, summaryOf } from '../records-view.js';
import type { Action } from './action.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A whole number in [min, max] (max: none when undefined), else a usage error saying the range. */
function wholeNumber(flag: string, min: number, max?: number): (v: string) => number {
  return (v) => {
    const n = v.trim() === '' ? Number.NaN : Number(v);
    if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new FieldvaultError('FIELD_USAGE', { detail: `${flag}: a whole number ${max === undefined ? `of ${min} or more` : `from ${min} to ${max}`}` });
    }
    return n;
  };
}

function numberArg(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new FieldvaultError('FIELD_USAGE', { detail: `${flag}: a number` });
    return n;
  };
}

interface LoadedPhoto {
  readonly file: string;
  readonly data: Uint8Array;
}

/**
 * Reads and checks photo files before anything is written, so that a wrong file does not leave a
 * record saved without its photos. The SDK checks again when it stores them.
 * @throws FIELD_FILE_UNREADABLE, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED
 */
function loadPhotos(files: readonly string[]): LoadedPhoto[] {
  return files.map((file) => {
    const data = new Uint8Array(readArgFile(file));
    if (data.byteLength > DEFAULT_PHOTO_MAX_BYTES) {
      throw new FieldvaultError('PHOTO_TOO_LARGE', { detail: `${file}: at most ${DEFAULT_PHOTO_MAX_BYTES} bytes` });
    }
    const type = detectPhotoType(data);
    if (type === undefined) throw new FieldvaultError('PHOTO_TYPE_UNSUPPORTED', { detail: `${file}: not a JPEG, PNG or WebP image` });
    stripImageMetadata(data, type); // throws PHOTO_TYPE_UNSUPPORTED for a malformed image
    return { file, data };
  });
}

interface AddedPhoto {
  readonly photoId: string;
  readonly file: string;
  readonly type: string;
  readonly size: number;
}

async function addPhotos(ctx: Context, session: Session, recordId: string, photos: readonly LoadedPhoto[]): Promise<{ added: AddedPhoto[]; record: ChildRecord | undefined }> {
  const added: AddedPhoto[] = [];
  let record: ChildRecord | undefined;
  const progress = photos.length > 1 ? ctx.progress() : undefined;
  const totalBytes = photos.reduce((n, p) => n + p.data.byteLength, 0);
  let doneBytes = 0;
  try {
    for (const p of photos) {
      progress?.update({ label: 'photos', done: added.length, total: photos.length, bytesDone: doneBytes, bytesTotal: totalBytes });
      const stored = await session.addPhoto(recordId, p.data);
      added.push({ photoId: stored.photoId, file: p.file, type: stored.type, size: stored.size });
      record = stored.record;
      doneBytes += p.data.byteLength;
    }
    progress?.update({ label: 'photos', done: added.length, total: photos.length, bytesDone: doneBytes, bytesTotal: totalBytes });
  } catch (err) {
    progress?.stop();
    ctx.out.note(`record ${recordId} is saved with ${added.length} of ${photos.length} photo(s); add the rest with "fieldvault-field photo add ${shortId(recordId)} FILE".`);
    throw err;
  }
  progress?.stop();
  return { added, record };
}

/** A photo of the record by full id or prefix. */
function photoIdOf(record: ChildRecord, idOrPrefix: string): string {
  const ids = Object.keys(record.photos).filter((id) => id.startsWith(idOrPrefix.toLowerCase()));
  if (ids.length === 0 || idOrPrefix.length < 4) throw new FieldvaultError('PHOTO_NOT_FOUND', { detail: idOrPrefix });
  if (ids.length > 1) throw new FieldvaultError('FIELD_USAGE', { detail: `"${idOrPrefix}" matches ${ids.length} photos: give more characters` });
  return ids[0] as string;
}

function parseFlagQuery(values: readonly string[]): Partial<Record<RecordFlag, boolean>> {
  const flags: Partial<Record<RecordFlag, boolean>> = {};
  for (const v of values) {
    const [name = '', setting = 'yes'] = v.split('=', 2);
    if (!(RECORD_FLAGS as readonly string[]).includes(name)) throw new FieldvaultError('FIELD_USAGE', { detail: `--flag: one of ${RECORD_FLAGS.join(', ')}` });
    if (!['yes', 'no', 'true', 'false'].includes(setting)) throw new FieldvaultError('FIELD_USAGE', { detail: `--flag ${name}=yes|no` });
    flags[name as RecordFlag] = setting === 'yes' || setting === 'true';
  }
  return flags;
}

const FIELDS_FILE_HELP =
  'read field values from a JSON file ({"name": "Amina Y.", "age": 7, "location": "Camp 3"}; write it readable only by you and delete it afterwards) ' +
  'instead of options, which other accounts on this computer can see while the command runs and your shell keeps in its history';

/** The command's options with those of --fields-file merged in (read before any password is asked). @throws FIELD_USAGE, FIELD_FILE_UNREADABLE */
function fieldOptions(raw: Record<string, unknown>): { options: Record<string, unknown>; unset: string[] } {
  const file = raw['fieldsFile'];
  if (typeof file !== 'string') return { options: raw, unset: [] };
  return withFieldsFile(readArgFile(file).toString('utf8'), file, raw);
}

/** Where a page of `list` or local `search` stands among all the matching records (what `--json` adds). */
interface PageInfo {
  /** All the records that match (all visible ones for `list`), on every page. */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  /** The --offset of the next page; null when this page is the last. */
  readonly nextOffset: number | null;
}

/**
 * The page's place among all matches. A short page that shows something (or the first page) is
 * the last one and already tells the total; otherwise `count` asks the database.
 */
async function pageOf(shown: number, limit: number, offset: number, count: () => Promise<number>): Promise<PageInfo> {
  const total = shown < limit && (shown > 0 || offset === 0) ? offset + shown : await count();
  return { total, offset, limit, nextOffset: offset + shown < total ? offset + shown : null };
}

/**
 * Says on stderr when the table is not every match (field audit F9: a full page of 100 read as
 * "all the records on this phone"), and how to see the rest.
 */
function notePage(ctx: Context, page: PageInfo, shown: number): void {
  if (shown === page.total) return;
  if (shown === 0) {
    ctx.out.note(`no records from --offset ${page.offset}: there are ${page.total} in all (the first page is --offset 0)`);
    return;
  }
  const range = `showing ${page.offset + 1}–${page.offset + shown} of ${page.total} records (newest first)`;
  ctx.out.note(
    page.nextOffset === null
      ? `${range}: the last page`
      : `${range}; next page: --offset ${page.nextOffset}${page.limit < MAX_PAGE_SIZE ? ` (or more per page: --limit up to ${MAX_PAGE_SIZE})` : ''}`,
  );
}

interface SearchOptions {
  readonly name?: string;
  readonly location?: string;
  readonly ageMin?: number;
  readonly ageMax?: number;
  readonly flag?: string[];
  readonly needsReview?: boolean;
  readonly mine?: boolean;
  readonly deleted?: boolean;
  readonly limit?: number;
  readonly offset?: number;
  readonly server?: string;
  readonly cursor?: string;
}

export function registerRecordCommands(program: Command, action: Action): void {
  addFieldOptions(
    program
      .command('register')
      .summary('register a new child record (with photos)')
      .description(
        'Registers a new child record in the database you see (verified, or your own unverified one before your first online login). ' +
          'Field values are checked against the child form; --name is required. Photos (JPEG, PNG or WebP, up to 10 MiB) are stripped of location metadata and encrypted.',
      ),
  )
    .option('--photo <file>', 'attach a photo (repeatable)', collect)
    .option('--fields-file <file>', FIELDS_FILE_HELP)
    .addHelpText('after', '\nExamples:\n  fieldvault-field register --name "Amina Y." --age 7 --sex female --location "Camp 3" --photo amina.jpg\n  fieldvault-field register --fields-file child.json --photo amina.jpg')
    .action(
      action(async (ctx, raw) => {
        const given = fieldOptions(raw as Record<string, unknown>);
        const opts = given.options as Record<string, unknown> & { photo?: string[] };
        if (given.unset.length > 0) throw new FieldvaultError('FIELD_USAGE', { detail: `--fields-file: a new record has nothing to clear (null for ${given.unset.join(', ')})` });
        const values = fieldValuesFrom(opts);
        if (values['name'] === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: '--name is required' });
        const photos = loadPhotos(opts.photo ?? []);
        await withSession(ctx, { offline: true }, async ({ session }) => {
          // One commit for the record and all its photos: a kill leaves nothing or all of it, so
          // registering again after a crash never makes a second, photo-less copy (s16 audit F2).
          const created = await session.createRecordWithPhotos(values, photos.map((p) => p.data));
          const record = created.record;
          const added: AddedPhoto[] = created.photos.map((c, i) => ({ photoId: c.photoId, file: photos[i]?.file ?? '', type: c.type, size: c.size }));
          ctx.out.result({ record: summaryOf(record), photos: added, database: session.kind }, () =>
            [
              `registered ${record.id} (${session.kind} database)`,
              ...added.map((p) => `  photo ${shortId(p.photoId)} ${p.type} ${bytes(p.size)} from ${p.file}`),
            ].join('\n'),
          );
        });
      }),
    );

  addFieldOptions(
    program
      .command('edit')
      .summary('change fields of a record')
      .description('Changes fields of a record you can see. The old values stay in its history; a concurrent edit on another phone is merged field by field when you sync.')
      .argument('<id>', 'record id, or its first characters as "list" shows them'),
  )
    .option('--unset <field>', 'clear a field (repeatable)', collect)
    .option('--fields-file <file>', `${FIELDS_FILE_HELP}; null clears a field`)
    .addHelpText('after', '\nExample:\n  fieldvault-field edit 3f2a9c1e --location "Camp 4" --caregiver "Aunt Halima" --reunited')
    .action(
      action(async (ctx, id, raw) => {
        const given = fieldOptions(raw as Record<string, unknown>);
        const opts = given.options as Record<string, unknown> & { unset?: string[] };
        const changes = fieldValuesFrom(opts, [...(opts.unset ?? []), ...given.unset]);
        if (Object.keys(changes).length === 0) throw new FieldvaultError('FIELD_USAGE', { detail: 'nothing to change: give a field option such as --location "Camp 4", or --unset FIELD to clear one (the options: "fieldvault-field help edit")' });
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecordToChange(session, String(id), 'edited');
          const record = await session.updateRecord(found.id, changes);
          ctx.out.result({ record: summaryOf(record), changed: Object.keys(changes) }, () => `updated ${record.id}: ${Object.keys(changes).join(', ')}`);
        });
      }),
    );

  program
    .command('show')
    .summary('show a record with its history and conflicts')
    .description(
      'Shows every field of a record, its photos, its full history (who changed what, old → new; which conflicts a supervisor reviewed, by whom and when) ' +
        'and a NEEDS REVIEW marker when concurrent edits lost a value.',
    )
    .argument('<id>', 'record id, or its first characters')
    .addHelpText('after', '\nExample:\n  fieldvault-field show 3f2a9c1e')
    .action(
      action(async (ctx, id) => {
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const record = await findRecord(session, String(id), { includeDeleted: true });
          ctx.out.result(
            { record: summaryOf(record), conflicts: conflictsOf(record), history: historyOf(record), resolutions: resolutionsOf(record), raw: record },
            () => recordDetails(record),
          );
        });
      }),
    );

  program
    .command('list')
    .summary('list the records you can see')
    .description(
      'Lists the records of the database you see, newest first, a page at a time (100 unless --limit says otherwise). When there are more, ' +
        'a note after the table says which of how many it shows and the --offset of the next page (--json: total and nextOffset). ' +
        'Unverified users see only the records they created.',
    )
    .option('--limit <n>', `records per page (1–${MAX_PAGE_SIZE})`, wholeNumber('--limit', 1, MAX_PAGE_SIZE), DEFAULT_PAGE_SIZE)
    .option('--offset <n>', 'records to skip', wholeNumber('--offset', 0), 0)
    .option('--deleted', 'include deleted records')
    .addHelpText('after', '\nExample:\n  fieldvault-field list --limit 20')
    .action(
      action(async (ctx, raw) => {
        const opts = raw as { limit: number; offset: number; deleted?: boolean };
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const includeDeleted = opts.deleted === true;
          const records = await session.listRecords({ limit: opts.limit, offset: opts.offset, includeDeleted });
          const page = await pageOf(records.length, opts.limit, opts.offset, () => session.countRecords({ includeDeleted }));
          ctx.out.result({ database: session.kind, records: records.map(summaryOf), ...page }, () => recordTable(records));
          notePage(ctx, page, records.length);
        });
      }),
    );

  program
    .command('search')
    .summary('search records on this device (or on a server)')
    .description(
      'Searches the records you can see on this device: every criterion given must match. Name and location match any part, any case. ' +
        `Results come a page at a time (${DEFAULT_PAGE_SIZE} unless --limit says otherwise); when there are more, a note says how many and the --offset of the next page. ` +
        'With --server NAME the server is searched instead (verified users; logs in online).',
    )
    .option('--name <text>', 'part of the name')
    .option('--location <text>', 'part of the location')
    .option('--age-min <n>', 'smallest age', numberArg('--age-min'))
    .option('--age-max <n>', 'largest age', numberArg('--age-max'))
    .option('--flag <name[=no]>', `a flag that must be set (or not: =no): ${RECORD_FLAGS.join(', ')} (repeatable)`, collect)
    .option('--needs-review', 'only records with an unreviewed concurrent edit')
    .option('--mine', 'only records you created')
    .option('--deleted', 'include deleted records')
    .option('--limit <n>', `results per page (1–${MAX_PAGE_SIZE} here; 1–${SEARCH_MAX_LIMIT} from a server, default 20 there)`, wholeNumber('--limit', 1, MAX_PAGE_SIZE))
    .option('--offset <n>', 'results to skip (local search)', wholeNumber('--offset', 0))
    .addOption(new Option('--server <name>', 'search this server instead of the device'))
    .option('--cursor <cursor>', 'the next page of a server search (printed with the results)')
    .addHelpText('after', '\nExamples:\n  fieldvault-field search --name amina --age-min 5 --age-max 10\n  fieldvault-field search --location "camp 3" --flag flagged --server office')
    .action(
      action(async (ctx, raw) => {
        const o = raw as SearchOptions;
        const flags = parseFlagQuery(o.flag ?? []);
        // A cursor pages a server's results: without --server it would be silently ignored.
        if (o.cursor !== undefined && o.server === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: '--cursor pages a server search: give it with the same --server NAME and criteria as the search that printed it' });
        if (o.server !== undefined) {
          await searchOnServer(ctx, o, flags);
          return;
        }
        await withSession(ctx, { offline: true }, async ({ session, username }) => {
          const query: RecordQuery = {
            ...(o.name === undefined ? {} : { name: o.name }),
            ...(o.location === undefined ? {} : { location: o.location }),
            ...(o.ageMin === undefined ? {} : { ageMin: o.ageMin }),
            ...(o.ageMax === undefined ? {} : { ageMax: o.ageMax }),
            ...(Object.keys(flags).length === 0 ? {} : { flags }),
            ...(o.needsReview === true ? { needsReview: true } : {}),
            ...(o.mine === true ? { createdBy: username } : {}),
            includeDeleted: o.deleted === true,
            limit: o.limit ?? DEFAULT_PAGE_SIZE,
            offset: o.offset ?? 0,
          };
          const records = await session.searchRecords(query);
          const page = await pageOf(records.length, query.limit ?? DEFAULT_PAGE_SIZE, query.offset ?? 0, () => session.countRecords(query));
          ctx.out.result({ where: 'device', database: session.kind, records: records.map(summaryOf), ...page }, () => recordTable(records));
          notePage(ctx, page, records.length);
        });
      }),
    );

  program
    .command('delete')
    .summary('delete a record')
    .description(
      'Marks a record deleted. The deletion is an edit like any other: it keeps the history and syncs to the servers. ' +
        'Field workers delete only the records they created; supervisors any.',
    )
    .argument('<id>', 'record id, or its first characters')
    .action(
      action(async (ctx, id) => {
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecordToChange(session, String(id), 'deleted again');
          const record = await session.deleteRecord(found.id);
          ctx.out.result({ record: summaryOf(record) }, () => `deleted ${record.id}`);
        });
      }),
    );

  program
    .command('resolve')
    .summary('mark concurrent edits of a record reviewed (supervisors)')
    .description(
      'Marks the open conflicts of a record (all, or those of one field) reviewed: the kept value stays. To keep the value that lost instead, ' +
        '"edit" the field to it first, then resolve. Only supervisors and admins resolve conflicts; the role is the one the server gave at your last online login.',
    )
    .argument('<id>', 'record id, or its first characters')
    .argument('[field]', 'only the conflicts of this field')
    .addHelpText('after', '\nExample:\n  fieldvault-field resolve 3f2a9c1e location')
    .action(
      action(async (ctx, id, field) => {
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecordToChange(session, String(id), 'resolved');
          const name = field === undefined ? undefined : String(field).replaceAll('-', '_');
          const open = openConflicts(found).filter((c) => name === undefined || c.field === name);
          if (open.length === 0) {
            const others = [...new Set(openConflicts(found).map((c) => optionOf(c.field)))];
            throw fieldError(
              'RECORD_CONFLICT_NOT_FOUND',
              `Record ${shortId(found.id)} has no open conflict${name === undefined ? '' : ` on ${optionOf(name)}`}: there is nothing to resolve` +
                `${others.length === 0 ? '' : `; its open conflicts are on: ${others.join(', ')}`}. "fieldvault-field show ${shortId(found.id)}" lists a record's conflicts.`,
            );
          }
          let record = found;
          for (const c of open) record = await session.resolveConflict(found.id, conflictId(c));
          ctx.out.result({ record: summaryOf(record), resolved: open.map((c) => c.field) }, () => `resolved ${open.length} conflict(s) of ${record.id}: ${open.map((c) => c.field).join(', ')}`);
        });
      }),
    );

  const photo = program.command('photo').summary('add, save or remove photos of a record').description('Photos of a record: add more, save one decrypted to a file, or remove one.');
  photo
    .command('add')
    .description('Adds photos (JPEG, PNG or WebP, up to 10 MiB each) to a record; location metadata is stripped before encryption.')
    .argument('<id>', 'record id, or its first characters')
    .argument('<files...>', 'image files')
    .action(
      action(async (ctx, id, files) => {
        const photos = loadPhotos(files as string[]);
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecordToChange(session, String(id), 'given photos');
          const { added } = await addPhotos(ctx, session, found.id, photos);
          ctx.out.result({ record: found.id, photos: added }, () =>
            added.map((p) => `added photo ${shortId(p.photoId)} ${p.type} ${bytes(p.size)} from ${p.file}`).join('\n'),
          );
        });
      }),
    );
  photo
    .command('save')
    .description('Decrypts one photo of a record, verifies it in full, and writes it to a file (mode 0600).')
    .argument('<id>', 'record id, or its first characters')
    .argument('<photo>', 'photo id, or its first characters (see "show")')
    .requiredOption('--out <file>', 'where to write the image')
    .action(
      action(async (ctx, id, photoArg, raw) => {
        const { out } = raw as { out: string };
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecord(session, String(id), { includeDeleted: true });
          const photoId = photoIdOf(found, String(photoArg));
          const content = await session.readPhoto(found.id, photoId);
          try {
            writeFileSync(out, content.bytes, { mode: 0o600, flag: 'wx' });
          } catch (err) {
            const code = (err as { code?: unknown }).code;
            throw new FieldvaultError('FIELD_FILE_UNREADABLE', { detail: `${out}: ${code === 'EEXIST' ? 'already exists (not overwritten)' : String(code)}` });
          }
          ctx.out.result({ record: found.id, photoId, type: content.type, sha256: content.sha256, file: out }, () => `saved photo ${shortId(photoId)} (${content.type}) to ${out}`);
        });
      }),
    );
  photo
    .command('remove')
    .description('Removes a photo from a record (the removal syncs; the record keeps a trace of it).')
    .argument('<id>', 'record id, or its first characters')
    .argument('<photo>', 'photo id, or its first characters')
    .action(
      action(async (ctx, id, photoArg) => {
        await withSession(ctx, { offline: true }, async ({ session }) => {
          const found = await findRecordToChange(session, String(id), 'changed');
          const photoId = photoIdOf(found, String(photoArg));
          await session.removePhoto(found.id, photoId);
          ctx.out.result({ record: found.id, photoId, removed: true }, () => `removed photo ${shortId(photoId)} from ${found.id}`);
        });
      }),
    );
}

/**
 * Whether a server search has results after the page that gave `cursor`. A server hands out a
 * cursor whenever a page is full, also when nothing follows it (field audit F4: "more results"
 * that were not there), so the CLI looks one result ahead with that cursor before offering it.
 * 'maybe': the server stopped scanning before finding one (its scan limit), so more may follow.
 */
async function moreOnServer(session: Session, transport: Transport, query: Partial<RecordSearchQuery>, cursor: string | null): Promise<'yes' | 'none' | 'maybe'> {
  if (cursor === null) return 'none';
  const ahead = await session.searchServer(transport, { ...query, limit: 1, cursor });
  if (ahead.records.length > 0) return 'yes';
  return ahead.nextCursor === null ? 'none' : 'maybe';
}

async function searchOnServer(ctx: Context, o: SearchOptions, flags: Partial<Record<RecordFlag, boolean>>): Promise<void> {
  // The server name is checked before the password is asked.
  const { name } = serverOf(ctx.home.ensure().config, o.server);
  if (o.offset !== undefined && o.offset > 0) throw new FieldvaultError('FIELD_USAGE', { detail: '--offset is for local search; a server pages with --cursor' });
  if (o.limit !== undefined && o.limit > SEARCH_MAX_LIMIT) throw new FieldvaultError('FIELD_USAGE', { detail: `--limit: a server returns at most ${SEARCH_MAX_LIMIT} results per page (--limit 1 to ${SEARCH_MAX_LIMIT}); page on with --cursor` });
  await withSession(ctx, { offline: false, server: name }, async ({ session, username, server }) => {
    if (server === undefined) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: name });
    const query: Partial<RecordSearchQuery> = {
      ...(o.name === undefined ? {} : { name: o.name }),
      ...(o.location === undefined ? {} : { location: o.location }),
      ...(o.ageMin === undefined ? {} : { ageMin: o.ageMin }),
      ...(o.ageMax === undefined ? {} : { ageMax: o.ageMax }),
      ...flags,
      ...(o.needsReview === true ? { needsReview: true } : {}),
      ...(o.mine === true ? { createdBy: username } : {}),
      includeDeleted: o.deleted === true,
      limit: o.limit ?? 20,
      ...(o.cursor === undefined ? {} : { cursor: o.cursor }),
    };
    let page: Awaited<ReturnType<Session['searchServer']>>;
    try {
      page = await session.searchServer(server.transport, query);
    } catch (err) {
      if (o.cursor !== undefined && isFieldvaultError(err) && err.code === 'SYNC_CHECKPOINT_INVALID') {
        throw fieldError(
          'SYNC_CHECKPOINT_INVALID',
          `The --cursor value is not valid for this search on ${name}: a cursor only continues the search that printed it (same server, same criteria), exactly as printed. ` +
            'Run the search again without --cursor, then page on with the cursor it prints.',
          err,
        );
      }
      throw err;
    }
    const more = await moreOnServer(session, server.transport, query, page.nextCursor);
    const nextCursor = more === 'none' ? null : page.nextCursor;
    ctx.out.result({ where: 'server', server: name, records: page.records.map(summaryOf), nextCursor }, () =>
      [
        recordTable(page.records),
        ...(nextCursor === null ? [] : ['', `${more === 'yes' ? 'more results' : 'there may be more results (the server stopped looking)'}: add --cursor ${nextCursor}`]),
      ].join('\n'),
    );
  });
}
