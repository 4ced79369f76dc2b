/**
 * The logger the SDK writes to: pino-compatible levels, an object of non-secret context first and
 * a message second. The SDK logs ids, counts, sizes and durations only, never record contents,
 * passwords or key material.
 */
export interface Logger {
  debug(context: Readonly<Record<string, unknown>>, message: string): void;
  info(context: Readonly<Record<string, unknown>>, message: string): void;
  warn(context: Readonly<Record<string, unknown>>, message: string): void;
  error(context: Readonly<Record<string, unknown>>, message: string): void;
}

/** The default: the SDK is quiet unless an app passes a logger (powersync's `Logger` does the same). */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
