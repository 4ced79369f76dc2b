import { createHash } from 'node:crypto';
import { FieldvaultError, isDeleted, needsReview, visibleFields, type ChildRecord, type RecordSearchQuery } from '@fieldvault/protocol';
import { SEARCH_TOKEN_MAX_LENGTH, SEARCH_TOKEN_SPLIT } from '../couch/design-docs.js';

/*
 * Server-side record search over the `search` view (design-docs.ts). Why a view: Mango in the
 * embedded stand-in loses a row with `$gt` + `limit` and has no bookmarks, and `_all_docs` alone
 * would scan every record for every query. A view is plain CouchDB 3.x, works in the stand-in,
 * pages exactly by key, and is queried only with keys built from typed, validated values.
 *
 * One criterion picks the index range to scan (name, then location, then a true flag, then
 * createdBy, then age; with none, all records in id order); every criterion is then checked on
 * the record itself, so the index only narrows. Work per request is capped (`search.maxScan`).
 */

export const FLAGS = ['flagged', 'reunited', 'investigated', 'duplicate', 'verified'] as const;

/** Lowercase words of a text, as the index makes them. */
export function words(text: string): string[] {
  const out = new Set<string>();
  for (const part of text.toLowerCase().split(SEARCH_TOKEN_SPLIT)) {
    const w = part.substring(0, SEARCH_TOKEN_MAX_LENGTH);
    if (w.length > 0) out.add(w);
  }
  return [...out];
}

export type SearchCriteria = Omit<RecordSearchQuery, 'limit' | 'cursor'>;

/** Which index range a query scans. `word` is the prefix a row's word must start with (name/location). */
export interface SearchPlan {
  readonly index: 'n' | 'l' | 'f' | 'c' | 'a' | 'all';
  readonly startkey: readonly unknown[];
  readonly endkey: readonly unknown[];
  readonly word?: string;
}

const HIGH = {}; // sorts after every number and string in CouchDB's view collation

function longest(list: readonly string[]): string | undefined {
  return list.reduce<string | undefined>((best, w) => (best === undefined || w.length > best.length ? w : best), undefined);
}

/**
 * Chooses the index range for a query.
 * @throws INPUT_INVALID when `ageMin` is above `ageMax`, or a text has no searchable word.
 */
export function planSearch(q: SearchCriteria): SearchPlan {
  if (q.ageMin !== undefined && q.ageMax !== undefined && q.ageMin > q.ageMax) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'query.ageMin: is above query.ageMax', details: { field: 'query.ageMin' } });
  }
  const texts: SearchPlan[] = [];
  for (const [tag, text, field] of [['n', q.name, 'name'], ['l', q.location, 'location']] as const) {
    if (text === undefined) continue;
    const word = longest(words(text));
    if (word === undefined) throw new FieldvaultError('INPUT_INVALID', { detail: `${field}: has no letters or digits to search for`, details: { field } });
    texts.push({ index: tag, startkey: [tag, word], endkey: [tag, `${word}\ufff0`], word });
  }
  if (texts[0] !== undefined) return texts[0];
  const flag = FLAGS.find((f) => q[f] === true);
  if (flag !== undefined) return { index: 'f', startkey: ['f', flag], endkey: ['f', flag, HIGH] };
  if (q.createdBy !== undefined) return { index: 'c', startkey: ['c', q.createdBy], endkey: ['c', q.createdBy, HIGH] };
  if (q.ageMin !== undefined || q.ageMax !== undefined) {
    return { index: 'a', startkey: ['a', q.ageMin ?? 0], endkey: q.ageMax === undefined ? ['a', HIGH] : ['a', q.ageMax, HIGH] };
  }
  return { index: 'all', startkey: [], endkey: [] };
}

/**
 * For name/location scans a record has one row per word: keep only the row of its first word
 * (in the index's own sorted list, the row value) that starts with the scanned prefix, so a
 * record is returned once per query even when several of its words match.
 */
export function isCanonicalRow(plan: SearchPlan, key: readonly unknown[], value: unknown): boolean {
  if (plan.word === undefined) return true;
  const word = plan.word;
  if (!Array.isArray(value)) return false;
  const first = (value as unknown[]).find((w): w is string => typeof w === 'string' && w.startsWith(word));
  return first !== undefined && key[1] === first;
}

function textMatches(value: unknown, query: string | undefined): boolean {
  if (query === undefined) return true;
  if (typeof value !== 'string') return false;
  const have = words(value);
  return words(query).every((w) => have.some((h) => h.startsWith(w)));
}

/** True when `record` meets every criterion of `q`. */
export function matches(record: ChildRecord, q: SearchCriteria): boolean {
  if (!q.includeDeleted && isDeleted(record)) return false;
  const v = visibleFields(record);
  if (!textMatches(v['name'], q.name) || !textMatches(v['location'], q.location)) return false;
  if (q.sex !== undefined && v['sex'] !== q.sex) return false;
  if (q.ageMin !== undefined || q.ageMax !== undefined) {
    const age = v['age'];
    if (typeof age !== 'number') return false;
    if (q.ageMin !== undefined && age < q.ageMin) return false;
    if (q.ageMax !== undefined && age > q.ageMax) return false;
  }
  for (const f of FLAGS) {
    const want = q[f];
    if (want !== undefined && (v[f] === true) !== want) return false;
  }
  if (q.createdBy !== undefined && record.createdBy !== q.createdBy) return false;
  if (q.needsReview !== undefined && needsReview(record) !== q.needsReview) return false;
  return true;
}

/** A short digest of the criteria: a cursor is only valid for the query that produced it. */
export function queryFingerprint(q: SearchCriteria): string {
  const entries = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('base64url').slice(0, 22);
}
