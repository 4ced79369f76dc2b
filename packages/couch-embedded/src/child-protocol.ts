/**
 * What the parent and the store child process say to each other. The parent passes a
 * {@link ChildConfig} as the child's only argument (JSON) and the child answers over the IPC
 * channel with exactly one {@link ChildMessage}.
 */

export interface ChildConfig {
  /** Absolute path of the data directory (created by the parent). */
  readonly dataDir: string;
  /** Loopback address to bind. */
  readonly host: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
}

export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'failed'; readonly reason: string };

/** Name of the LevelDB database that express-pouchdb keeps its database list in. */
export const ALL_DBS_NAME = 'pouch__all_dbs__';
