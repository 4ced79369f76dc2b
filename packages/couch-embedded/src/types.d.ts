// Minimal typings for the untyped CommonJS modules the child process uses. Only the surface
// child.ts touches is declared; the store's HTTP API is exercised through real requests instead.

declare module 'pouchdb' {
  export interface PouchDatabase {
    info(): Promise<Record<string, unknown>>;
    close(): Promise<void>;
    changes(...args: unknown[]): unknown;
    get(id: string, options?: Record<string, unknown>): Promise<Record<string, unknown>>;
    allDocs(options: Record<string, unknown>, callback?: (err: unknown, result?: unknown) => void): Promise<unknown> | undefined;
  }
  export interface PouchConstructor {
    new (name: string, options?: Record<string, unknown>): PouchDatabase;
    defaults(options: { prefix?: string; adapter?: string }): PouchConstructor;
    /** Set by express-pouchdb: the databases it has opened, by name. */
    __dbCacheMap?: { forEach(fn: (db: PouchDatabase, name: string) => void): void };
  }
  const PouchDB: PouchConstructor;
  export default PouchDB;
}

declare module 'express-pouchdb' {
  import type { RequestListener } from 'node:http';
  import type { PouchConstructor, PouchDatabase } from 'pouchdb';

  type Part = string;
  interface ExpressPouchOptions {
    mode?: 'fullCouchDB' | 'minimumForPouchDB' | 'custom';
    overrideMode?: { include?: Part[]; exclude?: Part[] };
    configPath?: string;
    logPath?: string;
    inMemoryConfig?: boolean;
  }
  interface ExpressPouchApp extends RequestListener {
    dbWrapper: {
      registerWrapper(wrapper: (name: string, db: PouchDatabase, next: () => unknown) => unknown): void;
    };
  }
  function expressPouchDB(PouchDB: PouchConstructor, options?: ExpressPouchOptions): ExpressPouchApp;
  export default expressPouchDB;
}

declare module 'express' {
  import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

  interface Request extends IncomingMessage {
    path: string;
    query: Record<string, unknown>;
  }
  interface Response extends ServerResponse {
    status(code: number): Response;
    json(body: unknown): Response;
  }
  type NextFunction = (err?: unknown) => void;
  type Handler = (req: Request, res: Response, next: NextFunction) => void;
  interface Application extends RequestListener {
    disable(setting: string): Application;
    use(handler: Handler | RequestListener): Application;
    listen(port: number, host: string, callback?: () => void): Server;
  }
  function express(): Application;
  export default express;
  export type { Request, Response, NextFunction, Handler, Application };
}
