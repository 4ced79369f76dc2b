import { FieldvaultError } from '@fieldvault/protocol';

/** Labels of UTF-8 (WHATWG Encoding's own two common ones), compared lower-cased. */
const UTF8_LABELS: ReadonlySet<string> = new Set(['utf-8', 'utf8']);

/** Every `charset` parameter of a content type, lower-cased and unquoted (none: an empty list). */
export function charsetsOf(contentType: string): string[] {
  const found: string[] = [];
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const value = param.slice(eq + 1).trim();
    found.push((value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value).toLowerCase());
  }
  return found;
}

/**
 * A JSON body is read as UTF-8 (RFC 8259 §8.1); one that declares another charset would be read
 * wrongly without a word (bad-input audit F6: `charset=latin1` was accepted). No charset, or UTF-8
 * in any case, is fine.
 *
 * @throws INPUT_UNSUPPORTED_MEDIA_TYPE when the content type declares a charset other than UTF-8.
 */
export function checkJsonCharset(contentType: string | undefined): void {
  if (contentType === undefined) return;
  if (charsetsOf(contentType).every((c) => UTF8_LABELS.has(c))) return;
  // The declared value is not echoed: the message names what to send instead.
  throw new FieldvaultError('INPUT_UNSUPPORTED_MEDIA_TYPE', { detail: 'a JSON body must be UTF-8: send "content-type: application/json" without a charset, or with charset=utf-8' });
}
