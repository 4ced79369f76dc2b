/**
 * The version of the runnable server, from apps/server/package.json: what the banner, the first log
 * record and `--version` name, so that after an upgrade an admin can tell which build is running
 * (admin audit s16, F9). This package's version, not the workspace root's (which has none): the
 * server is what `npm start` runs, and the admin and field CLIs report their own the same way.
 */
import { readFileSync } from 'node:fs';

/** `dist/version.js` and `src/version.ts` both sit one level below package.json. */
export const SERVER_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
