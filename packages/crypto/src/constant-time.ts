import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two byte strings in time independent of their contents. Arrays of different length
 * are unequal at once: every length compared in fieldvault (tags, ids, MACs) is public.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return timingSafeEqual(a, b);
}
