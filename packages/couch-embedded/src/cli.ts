#!/usr/bin/env node
/**
 * `fieldvault-couch --data ./data/couch [--port N] [--host 127.0.0.1] [--verbose]`: runs the
 * embedded store standalone for development, prints its URL and stops on Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { startEmbeddedCouch } from './embedded-couch.js';
import type { EmbeddedCouchLogger } from './embedded-couch.js';

const usage = 'usage: fieldvault-couch [--data DIR] [--port N] [--host 127.0.0.1] [--verbose]\n';

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
  process.stdout.write(`${store.url}\n`);
  store.once('crash', ({ code, signal }) => fatal(`store exited unexpectedly (code ${code}, signal ${signal})`, 1));
  const stop = (): void => {
    void store.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => fatal(err instanceof Error ? err.message : String(err), 1));
