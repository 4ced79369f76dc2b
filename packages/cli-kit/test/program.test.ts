// The program frame both CLIs run in (runCli): global options, the context per command, errors
// and exit statuses, clean-up. Real commander; stdout and stderr are captured.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, unexpectedErrorReport, type CliDefinition, type ErrorReport } from '../src/index.js';

class DemoError extends Error {
  constructor(readonly code: string, detail: string) {
    super(`${code === 'DEMO_USAGE' ? 'The command line is not valid.' : 'It failed.'} (${detail}) Do this.`);
  }
}

interface Globals {
  readonly home?: string;
  readonly flag?: boolean;
  readonly json?: boolean;
}

interface Ctx {
  readonly globals: Globals;
}

function demo(log: string[], body: (ctx: Ctx, ...args: unknown[]) => Promise<void>): CliDefinition<Ctx, Globals> {
  return {
    name: 'demo',
    version: '1.2.3',
    description: 'A demo CLI.',
    homeOption: 'the demo home',
    options: [{ flags: '--flag', description: 'a demo flag' }],
    helpAfter: '\nAfter the help.',
    helpExample: 'group command',
    usageError: (detail) => new DemoError('DEMO_USAGE', detail),
    reportOf: (err: unknown, debug: boolean): ErrorReport =>
      err instanceof DemoError ? { code: err.code, message: err.message, exitCode: err.code === 'DEMO_USAGE' ? 2 : 1 } : unexpectedErrorReport(err, debug),
    context: (globals) => {
      log.push('context');
      return { globals };
    },
    register(program, action) {
      program
        .command('run <what>')
        .option('--times <n>', 'how often')
        .action(action(body));
    },
    cleanup: () => log.push('cleanup'),
  };
}

/** Runs the CLI with stdout and stderr captured. */
async function run(cli: CliDefinition<Ctx, Globals>, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const write = { stdout: process.stdout.write.bind(process.stdout), stderr: process.stderr.write.bind(process.stderr) };
  process.stdout.write = ((chunk: string | Uint8Array) => ((out.stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((out.stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await runCli(cli, argv);
    return { code, ...out };
  } finally {
    process.stdout.write = write.stdout;
    process.stderr.write = write.stderr;
    process.exitCode = undefined;
  }
}

t.test('a command gets the context of the global options and its arguments, then clean-up runs', async (t) => {
  const log: string[] = [];
  const seen: unknown[] = [];
  const r = await run(
    demo(log, async (ctx, what, opts) => {
      seen.push(ctx.globals, what, opts);
    }),
    ['--home', '/tmp/x', 'run', 'it', '--flag', '--times', '3'],
  );
  t.equal(r.code, 0, r.stderr);
  t.match(seen, [{ home: '/tmp/x', flag: true }, 'it', { times: '3' }]);
  t.same(log, ['context', 'cleanup']);
});

t.test('the help lists the global options in order, the commands and the text after', async (t) => {
  const r = await run(demo([], async () => undefined), ['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: demo \[options\] \[command\]\n\nA demo CLI\./);
  t.match(r.stdout, /-V, --version[\s\S]*--home <dir>\s+the demo home[\s\S]*--flag\s+a demo flag[\s\S]*--json[\s\S]*--debug/);
  t.match(r.stdout, /run \[options\] <what>/);
  t.match(r.stdout, /After the help\.\n$/);
  const version = await run(demo([], async () => undefined), ['-V']);
  t.same([version.code, version.stdout], [0, '1.2.3\n']);
});

t.test('a command line commander refuses is the CLI\'s usage error, exit 2, in text or JSON', async (t) => {
  const text = await run(demo([], async () => undefined), ['nosuch']);
  t.equal(text.code, 2);
  t.match(text.stderr, /^demo: error DEMO_USAGE: The command line is not valid\. \(unknown command 'nosuch'\) Do this\.\n$/);
  const json = await run(demo([], async () => undefined), ['--json', 'run']);
  t.equal(json.code, 2);
  t.match(JSON.parse(json.stderr), { error: { code: 'DEMO_USAGE', message: /missing required argument 'what'/ } });
});

t.test('a catalogued error keeps its code; anything else is INTERNAL_ERROR without its message unless --debug', async (t) => {
  const log: string[] = [];
  const failing = await run(
    demo(log, async () => {
      throw new DemoError('DEMO_FAILED', 'x');
    }),
    ['run', 'it'],
  );
  t.same([failing.code, failing.stderr], [1, 'demo: error DEMO_FAILED: It failed. (x) Do this.\n']);
  t.same(log, ['context', 'cleanup'], 'clean-up runs after a failure too');
  const bug = async (): Promise<void> => {
    throw new Error('secret-ish detail');
  };
  const hidden = await run(demo([], bug), ['run', 'it']);
  t.equal(hidden.code, 1);
  t.equal(hidden.stderr, 'demo: error INTERNAL_ERROR: An unexpected error happened. Run again with --debug to see the details.\n');
  const shown = await run(demo([], bug), ['--debug', 'run', 'it']);
  t.match(shown.stderr, /INTERNAL_ERROR: An unexpected error happened\. Error: secret-ish detail\n\s+at /);
});

// Field audit s15, F1: a Ctrl-C that quits at once (the command cannot stop at a safe point) left
// the shell prompt and nothing else. A real child process: the handler ends the process.
async function interruptChild(withError: boolean, json: boolean): Promise<{ code: number | null; stderr: string }> {
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const script = `
    import { runMain } from ${JSON.stringify(dist)};
    class DemoError extends Error { constructor(code) { super('It was interrupted. Run it again.'); this.code = code; } }
    runMain({
      name: 'demo', version: '1', description: 'd', homeOption: 'h', options: [], helpAfter: '', helpExample: 'run x',
      usageError: (d) => new DemoError('DEMO_USAGE'),
      reportOf: (err) => ({ code: err.code, message: err.message, exitCode: err.code === 'DEMO_INTERRUPTED' ? 130 : 1 }),
      ${withError ? "interrupted: () => new DemoError('DEMO_INTERRUPTED')," : ''}
      context: (globals) => ({ globals }),
      register(program, action) {
        program.command('run <what>').action(action(async () => { process.stdout.write('ready\\n'); await new Promise(() => setInterval(() => {}, 1000)); }));
      },
    });`;
  // A file, not `node -e`: with -e, process.argv has no script path and runMain would drop the first argument.
  const dir = mkdtempSync(join(tmpdir(), 'cli-kit-'));
  const file = join(dir, 'demo.mjs');
  writeFileSync(file, script);
  const child = spawn(process.execPath, [file, ...(json ? ['--json'] : []), 'run', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('close', () => rmSync(dir, { recursive: true, force: true }));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stderr };
}

t.test('a Ctrl-C that quits at once prints the CLI\'s interrupted error, in text or JSON, and exits 130', async (t) => {
  const text = await interruptChild(true, false);
  t.same([text.code, text.stderr], [130, 'demo: error DEMO_INTERRUPTED: It was interrupted. Run it again.\n']);
  const json = await interruptChild(true, true);
  t.equal(json.code, 130);
  t.same(JSON.parse(json.stderr), { error: { code: 'DEMO_INTERRUPTED', message: 'It was interrupted. Run it again.' } });
  const silent = await interruptChild(false, false);
  t.same([silent.code, silent.stderr], [130, ''], 'a CLI without one quits silently, as before');
});
