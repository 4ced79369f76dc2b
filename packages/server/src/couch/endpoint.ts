import nano from 'nano';

type Doc = Record<string, unknown> & { _id: string; _rev?: string };

/** `host:port` of a store URL: what an operator needs to find it, without the user and password it may carry. */
export function storeAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port === '' ? (u.protocol === 'https:' ? '443' : '80') : u.port}`;
}

/**
 * What one exchange with the store showed: it answered (any HTTP status that is CouchDB's own
 * answer), nothing answered (no connection, or a 5xx from a proxy or a CouchDB unwell), or it
 * refused our credential (401/403).
 */
export type StoreSignal = { readonly kind: 'answered' } | { readonly kind: 'no-answer'; readonly status?: number } | { readonly kind: 'unauthorized'; readonly status: number };

/** What nano passes to its `log` option after each request (`err` null, 'socket' or 'couch'). */
interface NanoLogEntry {
  readonly err?: unknown;
  readonly headers?: { readonly statusCode?: unknown };
}

function signalOf(entry: NanoLogEntry): StoreSignal | undefined {
  // nano also logs each request before it is sent: that entry has no `err` key.
  if (!('err' in entry)) return undefined;
  if (entry.err === null) return { kind: 'answered' };
  if (entry.err === 'socket') return { kind: 'no-answer' };
  const status = typeof entry.headers?.statusCode === 'number' ? entry.headers.statusCode : 500;
  if (status === 401 || status === 403) return { kind: 'unauthorized', status };
  return status >= 500 ? { kind: 'no-answer', status } : { kind: 'answered' };
}

/**
 * The store as every CouchDB client of one app reaches it: one URL (with the app user's
 * credential; never logged) that can be switched when the store moved (`npm run couch` started
 * again on another port or with a new credential: multi-server audit L10). Document scopes are
 * taken from here at each use, so a switch reaches the repository, the KEK marker, the sign-up
 * and backup stores at once; requests in flight finish (or fail) on the old URL.
 */
export class StoreEndpoint {
  private current: nano.ServerScope;
  private currentUrl: string;
  private scopes = new Map<string, nano.DocumentScope<Doc>>();
  private readonly listeners = new Set<(signal: StoreSignal) => void>();

  constructor(url: string) {
    this.currentUrl = url;
    this.current = this.connect(url);
  }

  private connect(url: string): nano.ServerScope {
    return nano({ url, log: (entry: unknown) => this.observe(entry as NanoLogEntry) });
  }

  private observe(entry: NanoLogEntry): void {
    if (typeof entry !== 'object' || entry === null) return;
    const signal = signalOf(entry);
    if (signal === undefined) return;
    for (const listener of this.listeners) listener(signal);
  }

  /** The URL in use, credential included: for this process's own clients only, never for a log. */
  get url(): string {
    return this.currentUrl;
  }

  /** `host:port` in use. */
  get address(): string {
    return storeAddress(this.currentUrl);
  }

  get server(): nano.ServerScope {
    return this.current;
  }

  db(name: string): nano.DocumentScope<Doc> {
    let scope = this.scopes.get(name);
    if (scope === undefined) {
      scope = this.current.use<Doc>(name);
      this.scopes.set(name, scope);
    }
    return scope;
  }

  /** From now on every request goes to `url`. */
  switchTo(url: string): void {
    this.currentUrl = url;
    this.current = this.connect(url);
    this.scopes = new Map();
  }

  /** Called after every exchange with the store; returns the function that stops it. */
  watch(listener: (signal: StoreSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
