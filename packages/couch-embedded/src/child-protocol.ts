/**
 * What the parent and the store child process say to each other. The parent passes a
 * {@link ChildConfig} as the child's only argument (JSON: nothing secret, `ps` shows it), writes
 * the {@link ChildCredential} to the child's stdin and closes it, and the child answers over the
 * IPC channel with exactly one {@link ChildMessage}.
 *
 * The credential goes through stdin, not argv (world-readable through `ps` and /proc/<pid>/cmdline)
 * nor the environment (readable only by the same account, but inherited by anything the child
 * starts and kept for the life of the process): a pipe's content is seen by the two ends only.
 */

export interface ChildConfig {
  /** Absolute path of the data directory (created by the parent). */
  readonly dataDir: string;
  /** Loopback address to bind. */
  readonly host: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
}

/** The HTTP Basic credential every request to the store must carry (stdin, one JSON document). */
export interface ChildCredential {
  readonly username: string;
  readonly password: string;
}

export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'failed'; readonly reason: string };

/** Name of the LevelDB database that express-pouchdb keeps its database list in. */
export const ALL_DBS_NAME = 'pouch__all_dbs__';
