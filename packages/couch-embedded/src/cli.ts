#!/usr/bin/env node
/**
 * `fieldvault-couch --data ./data/couch [--port N] [--host 127.0.0.1] [--url-file FILE] [--verbose]`:
 * runs the embedded store standalone for development and stops on Ctrl-C.
 *
 * The store needs its per-start credential on every request. The URL with the credential goes to
 * a 0600 file (default `<data>/store-url`, removed on stop), never to the terminal: scrollback,
 * terminal logs and screen sharing keep what is printed. The terminal gets the address and the
 * file's path. The file's format is the one FIELDVAULT_COUCHDB_URL_FILE takes.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedCouch } from './embedded-couch.js';
import type { EmbeddedCouchLogger } from './embedded-couch.js';

const usage = 'usage: fieldvault-couch [--data DIR] [--port N] [--host 127.0.0.1] [--url-file FILE] [--verbose]\n';

function fatal(message: string, code: number): never {
  process.stderr.write(`fieldvault-couch: ${message}\n`);
  process.exit(code);
}

function stderrLogger(verbose: boolean): EmbeddedCouchLogger {
  const write = (level: string) => (obj: Record<string, unknown>, msg: string) => {
    process.stderr.write(`[${level}] ${msg} ${JSON.stringify(obj)}\n`);
  };
  const quiet = (): void => undefined;
  return { debug: verbose ? write('debug') : quiet, info: verbose ? write('info') : quiet, warn: write('warn'), error: write('error') };
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        data: { type: 'string', short: 'd', default: './data/couch' },
        port: { type: 'string', short: 'p', default: '0' },
        host: { type: 'string', default: '127.0.0.1' },
        'url-file': { type: 'string' },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    fatal(`${err instanceof Error ? err.message : String(err)}\n${usage}`, 2);
  }
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65_535) fatal(`--port must be an integer from 0 to 65535\n${usage}`, 2);

  const store = await startEmbeddedCouch({ dataDir: values.data, host: values.host, port, logger: stderrLogger(values.verbose) });
  const urlFile = resolve(values['url-file'] ?? join(store.dataDir, 'store-url'));
  try {
    // Written whole to a new file (mode 0600 from its creation) and renamed over the old one: a
    // server re-reading the file while the store restarts (store-move.ts) never sees half a URL.
    const partial = `${urlFile}.${process.pid}.partial`;
    rmSync(partial, { force: true });
    writeFileSync(partial, `${store.url}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(partial, urlFile);
  } catch (err) {
    await store.stop();
    fatal(`cannot write the store URL file ${urlFile}: ${err instanceof Error ? err.message : String(err)}`, 1);
  }
  const removeUrlFile = (): void => rmSync(urlFile, { force: true });
  process.stdout.write(
    `store at ${store.origin} (every request needs its credential, HTTP Basic user ${store.credential.username})\n` +
      `URL with the credential, mode 0600: ${urlFile}\n` +
      `  a server on it: FIELDVAULT_COUCHDB_URL_FILE=${urlFile} npm start\n` +
      `  never put the URL on a command line: ps shows command lines to every local account\n`,
  );
  store.once('crash', ({ code, signal }) => {
    removeUrlFile();
    fatal(`store exited unexpectedly (code ${code}, signal ${signal})`, 1);
  });
  const stop = (): void => {
    void store.stop().then(() => {
      removeUrlFile();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => fatal(err instanceof Error ? err.message : String(err), 1));
