#!/usr/bin/env node
/**
 * `npm start`: reads the configuration, starts the server and prints what a new operator needs
 * (where it listens, the dev certificate to trust, how to create the first admin).
 * Ctrl-C / SIGTERM stop the listeners, the app and the embedded store cleanly. Configured by
 * FIELDVAULT_* variables only: `--help` and `--version` answer without starting anything, any
 * other argument is refused (args.ts).
 */
import { isFieldvaultError } from '@fieldvault/protocol';
import { readInvocation, usage } from './args.js';
import { startBanner } from './banner.js';
import { loadConfig } from './config.js';
import { startServer } from './start.js';
import { SERVER_VERSION } from './version.js';

async function main(): Promise<void> {
  // Before the configuration: nothing may be read or created for a --help.
  const invocation = readInvocation(process.argv.slice(2));
  if (invocation !== 'run') {
    process.stdout.write(invocation === 'help' ? usage() : `${SERVER_VERSION}\n`);
    return;
  }
  const config = loadConfig();
  const server = await startServer(config);
  process.stderr.write(startBanner(server, config, process.stderr.isTTY === true));

  let exiting = false;
  const shutdown = (signal: string, code = 0): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\n${signal}: stopping fieldvault…\n`);
    server.stop().then(
      () => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  void server.storeCrashed.then((reason) => {
    process.stderr.write(`\nfatal: ${reason}; acknowledged data is on disk — start the server again.\n`);
    shutdown('store crash', 1);
  });
}

main().catch((err: unknown) => {
  // Catalogued errors carry a message that says what to do; anything else is a bug.
  if (isFieldvaultError(err)) process.stderr.write(`fieldvault: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`fieldvault: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
