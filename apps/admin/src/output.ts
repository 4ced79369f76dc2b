/*
 * What commands print: the shared pieces (JSON or human output, tables, sizes) come from
 * @fieldvault/cli-kit; the admin CLI's own time format is here.
 */
export { bytes, createOutput, keyValues, showValue, table, type Column, type Output } from '@fieldvault/cli-kit';

/** An ISO time for people: UTC, to the second, `2026-05-01 09:30:12Z`; null as "—". */
export function timeOf(time: string | null): string {
  if (time === null) return '—';
  return time.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}
