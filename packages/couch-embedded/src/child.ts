/**
 * The store process: express + express-pouchdb over PouchDB's LevelDB adapter, bound to a
 * loopback address, answering only requests that carry the credential its parent wrote to its
 * stdin. Started only by `startEmbeddedCouch` (it needs the IPC channel), never imported. It reports its port (or why it could not start) over IPC, and exits when told to
 * (SIGTERM), when the parent goes away (IPC disconnect or a changed parent pid), so that no
 * orphan keeps the LevelDB locks of the data directory.
 */
import { accessSync, constants, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import expressPouchDB from 'express-pouchdb';
import PouchDB from 'pouchdb';
import type { PouchDatabase } from 'pouchdb';
import { requireCredential } from './basic-auth.js';
import { ALL_DBS_NAME } from './child-protocol.js';
import { installKeyedReadFastPath } from './keyed-read.js';
import { installPendingEstimate } from './pending-estimate.js';
import type { ChildConfig, ChildCredential, ChildMessage } from './child-protocol.js';

/** How long a graceful shutdown may take before the child exits anyway. */
const SHUTDOWN_GRACE_MS = 5_000;
/** How often the child checks that its parent is still alive. */
const PARENT_WATCH_MS = 500;

function send(message: ChildMessage, then?: () => void): void {
  if (process.send === undefined) {
    then?.();
    return;
  }
  process.send(message, undefined, undefined, () => then?.());
}

/** A reason the store cannot start, reported to the parent as is. */
class StartupError extends Error {}

function fail(reason: string): never {
  throw new StartupError(reason);
}

function parseConfig(raw: string | undefined): ChildConfig {
  if (raw === undefined) fail('missing configuration argument');
  const value: unknown = JSON.parse(raw);
  if (typeof value !== 'object' || value === null) fail('configuration is not an object');
  const { dataDir, host, port } = value as Record<string, unknown>;
  if (typeof dataDir !== 'string' || typeof host !== 'string' || typeof port !== 'number') {
    fail('configuration needs dataDir, host and port');
  }
  return { dataDir, host, port };
}

/** The credential the parent wrote to stdin (one JSON document, then end of input). */
async function readCredential(): Promise<ChildCredential> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    // Never quote the input: it is the secret.
    fail('the credential on stdin is not JSON');
  }
  const { username, password } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') {
    fail('the credential on stdin needs a username and a password');
  }
  return { username, password };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkDataDir(dataDir: string): void {
  try {
    if (!statSync(dataDir).isDirectory()) fail(`data directory ${dataDir} is not a directory`);
    accessSync(dataDir, constants.R_OK | constants.W_OK);
  } catch (err) {
    fail(`data directory ${dataDir} is not usable: ${errorMessage(err)}`);
  }
}

/**
 * Rejects `_changes?filter=_selector` before it reaches PouchDB: the stand-in does not implement
 * it, and the error it raises inside express-pouchdb used to take the whole process down.
 */
function changesFilterGuard(req: Request, res: Response, next: NextFunction): void {
  const filter = req.query['filter'];
  const filters = Array.isArray(filter) ? filter : [filter];
  if (req.path.endsWith('/_changes') && filters.includes('_selector')) {
    res.status(400).json({
      error: 'bad_request',
      reason: 'filter=_selector is not supported by the embedded store; use doc_ids or filter in the caller',
    });
    return;
  }
  next();
}

async function main(): Promise<void> {
  // Once the parent is gone its pipes are closed: a late log line must not kill the shutdown.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  if (process.send === undefined) {
    process.stderr.write('fieldvault-couch child: start it with startEmbeddedCouch() or the fieldvault-couch CLI\n');
    process.exit(2);
  }
  // Everything LevelDB creates is private to this account (records in plain JSON, password hashes).
  process.umask(0o077);
  const config = parseConfig(process.argv[2]);
  const credential = await readCredential();
  checkDataDir(config.dataDir);

  const Pouch = PouchDB.defaults({ prefix: join(config.dataDir, '/') });

  // Open the database list first: LevelDB takes an exclusive lock on it, so a second store on
  // the same directory fails here instead of serving a half-usable view of the data.
  const allDbs = new Pouch(ALL_DBS_NAME);
  try {
    await allDbs.info();
  } catch (err) {
    fail(`cannot open the store in ${config.dataDir} (is another store using it?): ${errorMessage(err)}`);
  }

  // minimumForPouchDB + _find/_index + _security: everything a CouchDB 3 client needs for
  // documents, bulk, changes, attachments, views and Mango, without the fullCouchDB extras
  // (config/log files, _users, _replicator, Fauxton, validate_doc_update) that either write
  // files or diverge from CouchDB 3. Compression is off: it is useless on loopback and makes
  // continuous _changes stall.
  const pouchApp = expressPouchDB(Pouch, {
    mode: 'minimumForPouchDB',
    overrideMode: { include: ['routes/find', 'routes/security'], exclude: ['compression'] },
  });
  // pouchdb-security re-emits changes-feed errors on an emitter nobody listens to, which throws
  // and kills the process (e.g. a `filter` naming a missing design doc). The request handler
  // already gets the error through the promise, so a listener here only stops the throw.
  pouchApp.dbWrapper.registerWrapper((_name, db, next) => {
    const changes = db.changes.bind(db);
    db.changes = (...args: unknown[]): unknown => {
      const feed = changes(...args);
      if (typeof feed === 'object' && feed !== null && 'on' in feed && typeof feed.on === 'function') {
        feed.on('error', () => undefined);
      }
      return feed;
    };
    return next();
  });

  // `pending` in paged `_changes` answers, as CouchDB 3 gives it (estimated: see pending-estimate.ts).
  pouchApp.dbWrapper.registerWrapper((_name, db, next) => {
    installPendingEstimate(db);
    return next();
  });

  // `_all_docs` with `keys`: one `get` per key instead of PouchDB's iterator per key (see keyed-read.ts).
  pouchApp.dbWrapper.registerWrapper((_name, db, next) => {
    installKeyedReadFastPath(db);
    return next();
  });

  const app = express();
  app.disable('x-powered-by');
  // First: nothing, not even the welcome document, without the credential.
  app.use(requireCredential(credential));
  app.use(changesFilterGuard);
  app.use(pouchApp);

  const server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err) => {
      reject(new StartupError(`cannot listen on ${config.host}:${config.port}: ${errorMessage(err)}`));
    });
  });
  server.on('error', (err) => process.stderr.write(`fieldvault-couch child: server error: ${errorMessage(err)}\n`));

  let shuttingDown = false;
  const shutdown = (why: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    process.stdout.write(`fieldvault-couch child: shutting down (${why})\n`);
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
    server.close();
    server.closeAllConnections();
    const open: PouchDatabase[] = [allDbs];
    Pouch.__dbCacheMap?.forEach((db) => open.push(db));
    void Promise.allSettled(open.map((db) => db.close())).then(() => process.exit(0));
  };

  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // The parent owns the lifecycle: a Ctrl-C in the terminal reaches the whole process group,
  // and the parent may still be draining requests that need the store.
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => shutdown('parent disconnected'));
  const parentPid = process.ppid;
  setInterval(() => {
    if (process.ppid !== parentPid) shutdown('parent exited');
  }, PARENT_WATCH_MS).unref();

  send({ type: 'ready', port: (server.address() as AddressInfo).port });
}

main().catch((err: unknown) => {
  const reason =
    err instanceof StartupError ? err.message : `unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  process.stderr.write(`fieldvault-couch child: ${reason}\n`);
  send({ type: 'failed', reason }, () => process.exit(1));
});
