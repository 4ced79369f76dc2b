// Minimal typings for the untyped `pouchdb` package: only the surface the baselines use.
declare module 'pouchdb' {
  export interface ReplicationResult {
    readonly ok: boolean;
    readonly docs_read: number;
    readonly docs_written: number;
    readonly doc_write_failures: number;
    readonly errors: readonly unknown[];
  }
  export interface ReplicateOptions {
    readonly batch_size?: number;
    readonly batches_limit?: number;
  }
  export interface PouchDatabase {
    bulkDocs(docs: readonly object[]): Promise<Array<{ ok?: boolean; error?: unknown }>>;
    info(): Promise<{ doc_count: number; update_seq: unknown }>;
    close(): Promise<void>;
    replicate: {
      to(target: string, options?: ReplicateOptions): Promise<ReplicationResult>;
      from(source: string, options?: ReplicateOptions): Promise<ReplicationResult>;
    };
  }
  export interface PouchConstructor {
    new (name: string, options?: Record<string, unknown>): PouchDatabase;
  }
  const PouchDB: PouchConstructor;
  export default PouchDB;
}
