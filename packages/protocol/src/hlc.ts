import { Type } from '@sinclair/typebox';
import { FieldvaultError } from './errors.js';

/**
 * Hybrid logical clock (Kulkarni et al., 2014) timestamps.
 *
 * String form: `WWWWWWWWWWWWW-CCCC-node`
 * - `W`: wall-clock milliseconds since the Unix epoch, 13 decimal digits, zero-padded
 *   (0 … 9 999 999 999 999, i.e. until the year 2286);
 * - `C`: logical counter, 4 lowercase hex digits (0 … ffff);
 * - `node`: the issuer's node id ({@link NODE_ID_PATTERN}), a server name or a device IMEI.
 *
 * Because wall and counter are fixed width and the node comes last, plain string comparison
 * (`<`, `localeCompare` is NOT the same) orders timestamps exactly by (wall, counter, node).
 */

/** A node (issuer) id: lowercase, 1–64 characters, `[a-z0-9]` then `[a-z0-9._-]`. An IMEI is a valid node id. */
export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A complete HLC string; see the module comment for the layout. */
export const HLC_PATTERN = /^[0-9]{13}-[0-9a-f]{4}-[a-z0-9][a-z0-9._-]{0,63}$/;

/** Largest wall time representable in 13 digits (ms). */
export const HLC_MAX_WALL = 9_999_999_999_999;
/** Largest counter value (4 hex digits). */
export const HLC_MAX_COUNTER = 0xffff;
/** Default allowed skew of a remote timestamp ahead of the local wall clock: 5 minutes. */
export const DEFAULT_MAX_SKEW_MS = 300_000;

const WALL_DIGITS = 13;
const COUNTER_DIGITS = 4;
const HLC_MAX_LENGTH = WALL_DIGITS + 1 + COUNTER_DIGITS + 1 + 64;

export const NodeIdSchema = Type.String({ pattern: NODE_ID_PATTERN.source, maxLength: 64 });
export const HlcSchema = Type.String({
  pattern: HLC_PATTERN.source,
  maxLength: HLC_MAX_LENGTH,
  description: 'Hybrid logical clock timestamp: 13-digit wall ms, 4-hex-digit counter, node id',
});

/** A parsed timestamp. */
export interface Hlc {
  readonly wall: number;
  readonly counter: number;
  readonly node: string;
}

/** True when `value` is a well-formed HLC string. */
export function isHlc(value: unknown): value is string {
  return typeof value === 'string' && value.length <= HLC_MAX_LENGTH && HLC_PATTERN.test(value);
}

/**
 * Parses an HLC string into its parts.
 *
 * @throws HLC_INVALID when `value` is not a well-formed HLC string.
 */
export function parseHlc(value: unknown): Hlc {
  if (!isHlc(value)) throw new FieldvaultError('HLC_INVALID');
  return {
    wall: Number(value.slice(0, WALL_DIGITS)),
    counter: Number.parseInt(value.slice(WALL_DIGITS + 1, WALL_DIGITS + 1 + COUNTER_DIGITS), 16),
    node: value.slice(WALL_DIGITS + 2 + COUNTER_DIGITS),
  };
}

/**
 * Formats timestamp parts as an HLC string.
 *
 * @throws HLC_INVALID when a part is out of range (wall not an integer in 0 … {@link HLC_MAX_WALL},
 *   counter not an integer in 0 … {@link HLC_MAX_COUNTER}, node not matching {@link NODE_ID_PATTERN}).
 */
export function formatHlc(hlc: Hlc): string {
  const { wall, counter, node } = hlc;
  if (!Number.isInteger(wall) || wall < 0 || wall > HLC_MAX_WALL) {
    throw new FieldvaultError('HLC_INVALID', { detail: 'wall time out of range' });
  }
  if (!Number.isInteger(counter) || counter < 0 || counter > HLC_MAX_COUNTER) {
    throw new FieldvaultError('HLC_INVALID', { detail: 'counter out of range' });
  }
  if (typeof node !== 'string' || !NODE_ID_PATTERN.test(node)) {
    throw new FieldvaultError('HLC_INVALID', { detail: 'node id does not match its pattern' });
  }
  return `${String(wall).padStart(WALL_DIGITS, '0')}-${counter.toString(16).padStart(COUNTER_DIGITS, '0')}-${node}`;
}

/**
 * Orders two HLC strings by (wall, counter, node): negative, zero or positive.
 * Equivalent to comparing the strings by code unit.
 *
 * @throws HLC_INVALID when either argument is not a well-formed HLC string.
 */
export function compareHlc(a: string, b: string): -1 | 0 | 1 {
  if (!isHlc(a) || !isHlc(b)) throw new FieldvaultError('HLC_INVALID');
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface ClockOptions {
  /** This clock's node id: the server name or the device IMEI. */
  readonly node: string;
  /** Wall clock in ms since the epoch; defaults to `Date.now`. Tests inject a fake here. */
  readonly now?: () => number;
  /** How far (ms) a received timestamp may be ahead of the local wall clock; default 5 minutes. */
  readonly maxSkewMs?: number;
  /**
   * The newest timestamp this node issued or received before a restart (persist `clock.last()`
   * and pass it back) so that a restarted clock never issues an older timestamp.
   */
  readonly last?: string;
}

export interface HlcClock {
  /** This clock's node id. */
  readonly node: string;
  /**
   * A fresh timestamp for a local event, strictly greater than every timestamp this clock issued
   * or received, even when the wall clock stepped back.
   *
   * @throws HLC_COUNTER_OVERFLOW when more than 65 536 events fall into one millisecond.
   * @throws HLC_INVALID when the injected wall clock returns a value outside 0 … {@link HLC_MAX_WALL}.
   */
  now(): string;
  /**
   * Takes in a timestamp from another node and returns a fresh local timestamp strictly greater
   * than both `remote` and everything this clock issued or received. On any error the clock is
   * left unchanged.
   *
   * `reference` is a wall time (ms) vouched for by a trusted peer: the server's clock in a pull
   * response, since the server refuses versions dated beyond its own skew. The drift is then
   * measured from the later of it and the local wall clock, so a device whose clock runs behind
   * still takes in what its server sends (issue 5) and, as HLCs do, orders its later events after
   * it; versions ahead of both are still refused.
   *
   * @throws HLC_INVALID when `remote` is not a well-formed HLC string, or `reference` is not a wall time.
   * @throws HLC_TOO_FAR_AHEAD when `remote`'s wall time is more than `maxSkewMs` ahead of the local wall clock (and of `reference`).
   * @throws HLC_COUNTER_OVERFLOW when the counter would exceed {@link HLC_MAX_COUNTER}.
   */
  receive(remote: string, reference?: number): string;
  /** The newest timestamp issued or received so far (what to persist across restarts), without advancing. */
  last(): string;
}

/**
 * Creates a hybrid logical clock for `node`.
 *
 * @throws INPUT_INVALID when `node` does not match {@link NODE_ID_PATTERN} or `maxSkewMs` is not a
 *   non-negative finite number.
 * @throws HLC_INVALID when `last` is given and is not a well-formed HLC string.
 */
export function createClock(options: ClockOptions): HlcClock {
  const { node, now: wallClock = Date.now, maxSkewMs = DEFAULT_MAX_SKEW_MS } = options;
  if (typeof node !== 'string' || !NODE_ID_PATTERN.test(node)) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'node: does not match the node id pattern', details: { field: 'node' } });
  }
  if (typeof maxSkewMs !== 'number' || !Number.isFinite(maxSkewMs) || maxSkewMs < 0) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'maxSkewMs: must be a non-negative number', details: { field: 'maxSkewMs' } });
  }
  let wall = 0;
  let counter = 0;
  let lastNode = node;
  if (options.last !== undefined) {
    const restored = parseHlc(options.last);
    wall = restored.wall;
    counter = restored.counter;
    lastNode = restored.node;
  }

  function physical(): number {
    const pt = Math.floor(wallClock());
    if (!Number.isFinite(pt) || pt < 0 || pt > HLC_MAX_WALL) {
      throw new FieldvaultError('HLC_INVALID', { detail: 'the local wall clock returned an out-of-range time' });
    }
    return pt;
  }

  // State is committed only after every check passed, so a throwing call changes nothing.
  function commit(nextWall: number, nextCounter: number): string {
    if (nextCounter > HLC_MAX_COUNTER) throw new FieldvaultError('HLC_COUNTER_OVERFLOW');
    wall = nextWall;
    counter = nextCounter;
    lastNode = node;
    return formatHlc({ wall, counter, node });
  }

  return {
    node,
    now(): string {
      const pt = physical();
      return pt > wall ? commit(pt, 0) : commit(wall, counter + 1);
    },
    receive(remote: string, reference?: number): string {
      const r = parseHlc(remote);
      const pt = physical();
      if (reference !== undefined && (!Number.isInteger(reference) || reference < 0 || reference > HLC_MAX_WALL)) {
        throw new FieldvaultError('HLC_INVALID', { detail: 'reference: not a wall time in ms' });
      }
      const base = Math.max(pt, reference ?? 0);
      if (r.wall - base > maxSkewMs) {
        throw new FieldvaultError('HLC_TOO_FAR_AHEAD', { details: { aheadMs: r.wall - base, maxSkewMs } });
      }
      const nextWall = Math.max(wall, r.wall, pt);
      if (nextWall === wall && nextWall === r.wall) return commit(nextWall, Math.max(counter, r.counter) + 1);
      if (nextWall === wall) return commit(nextWall, counter + 1);
      if (nextWall === r.wall) return commit(nextWall, r.counter + 1);
      return commit(nextWall, 0);
    },
    last(): string {
      return formatHlc({ wall, counter, node: lastNode });
    },
  };
}
