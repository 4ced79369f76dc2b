import { parseHlc } from '@fieldvault/protocol';

/*
 * What commands print: the shared pieces (JSON or human output, tables, sizes, values) come from
 * @fieldvault/cli-kit; the field CLI's times, which may be HLC timestamps, are here.
 */
export { bytes, createOutput, keyValues, showValue, table, type Column, type Output } from '@fieldvault/cli-kit';

/** The wall time of an HLC timestamp, ISO 8601 (for JSON). */
export function isoOf(hlc: string): string {
  try {
    return new Date(parseHlc(hlc).wall).toISOString();
  } catch {
    return hlc;
  }
}

/** An ISO time or HLC timestamp for people: UTC, to the second, `2026-05-01 09:30:12Z`. */
export function timeOf(time: string): string {
  const iso = /^\d{4}-\d{2}-\d{2}T/.test(time) ? time : isoOf(time);
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}
