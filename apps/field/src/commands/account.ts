import type { Command } from 'commander';
import type { Device, HttpTransport } from '@fieldvault/client';
import type { SignupStatus } from '@fieldvault/protocol';
import { forgettingWipedUser, inServerTerms, openDevice, serverOf, serverRefOf, transportOf, userOf, type Context } from '../context.js';
import type { HomeConfig, ServerEntry } from '../home.js';
import { keyValues, table, timeOf } from '../output.js';
import { shortId } from '../records-view.js';
import type { Action } from './action.js';
import { registerClaimCommand } from './claim-records.js';
import { registerSetPasswordCommand } from './set-password.js';

/*
 * Pending sign-ups (issue 7): a user who signed up offline on this phone asks a server for an
 * account, then asks how the request stands. Both are device-signed calls of the SDK
 * (`Device.requestAccount`, `Device.accountStatus`); neither logs in, and nothing on the phone
 * changes but the device key pair the first signed call makes: the records stay in the user's
 * unverified database until the first online login after an admin's approval moves them (flow 1),
 * with the same ids, so the server holds each once.
 */

/**
 * What the user does next, for a request in `status` ("login office", with --user when the user is
 * not the remembered one). `verified`: the user has logged in online on this phone since.
 */
function nextStep(status: SignupStatus, username: string, server: string, config: HomeConfig, verified = false): string {
  const cli = `fieldvault-field${config.currentUser === username ? '' : ` --user ${username}`}`;
  switch (status) {
    case 'pending':
      return `wait for an admin of ${server} to approve it; check with "${cli} account-status ${server}"`;
    case 'approved':
      return verified
        ? `nothing: you have logged in online on this phone already; "${cli} sync ${server}" sends and receives records`
        : `log in online with the password you chose on this phone: "${cli} login ${server}" (your records then move into the verified database)`;
    case 'rejected':
      return `ask your supervisor why; your records are still on this phone. "${cli} request-account ${server}" asks again (a new request replaces the rejected one)`;
  }
}

/** `pending (asked 2026-…)` / `approved 2026-… (asked 2026-…)` */
function stateLine(status: SignupStatus, requestedAt: string, decidedAt: string | null): string {
  return status === 'pending' || decidedAt === null ? `${status} (asked ${timeOf(requestedAt)})` : `${status} ${timeOf(decidedAt)} (asked ${timeOf(requestedAt)})`;
}

/** The phone, the user (`--user` or the remembered one) and the server to ask (named, or the only one configured). */
async function requestTarget(ctx: Context, server: unknown, command: string): Promise<{ device: Device; config: HomeConfig; username: string; name: string; entry: ServerEntry; transport: HttpTransport }> {
  const { device, config } = await openDevice(ctx);
  const username = userOf(ctx, config);
  const { name, entry } = serverOf(config, server as string | undefined, command);
  return { device, config, username, name, entry, transport: transportOf(entry) };
}

export function registerAccountCommands(program: Command, action: Action): void {
  registerSetPasswordCommand(program, action);
  registerClaimCommand(program, action);
  program
    .command('request-account')
    .summary('ask a server for an account for the user who signed up offline on this phone')
    .description(
      'For a user who signed up offline on this phone ("signup"): asks the server for an account with the password you chose here (it asks ' +
        'for it, like "login"; the server keeps only a hash) and sends your own records with the request. The server keeps them in ' +
        'quarantine, seen by its admins only, until an admin approves the request (the account gets this password) or rejects it ' +
        '(the records sent are deleted there). Nothing on this phone changes: keep working offline. Once approved, "login" moves your ' +
        'records into the verified database; they keep their ids, so the server holds each once. Running it again while the request is ' +
        'pending renews it with the records added since (same password). Records the server refuses are listed with their code and stay ' +
        'on this phone (exit status 1). See "account-status" for the answer.',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .addHelpText('after', '\nExamples:\n  fieldvault-field signup --user amina\n  fieldvault-field request-account office\n  fieldvault-field account-status office')
    .action(
      action(async (ctx, server) => {
        // The server is resolved before the password is asked, so a typo costs no typing.
        const { device, config, username, name, entry, transport } = await requestTarget(ctx, server, 'request-account');
        const password = await ctx.passwords.ask(`Password for ${username}`);
        const result = await inServerTerms(serverRefOf({ name, entry }), config.servers, () => forgettingWipedUser(ctx, () => device.requestAccount(username, password, { transport })));
        const failed = result.failed.map((f) => ({ id: f.id, code: f.code ?? 'INTERNAL_ERROR', ...(f.field === undefined ? {} : { field: f.field }) }));
        const next = nextStep(result.status, username, name, config);
        if (failed.length > 0) process.exitCode = 1;
        ctx.out.result(
          { user: username, server: { name, serverId: entry.serverId }, status: result.status, requestedAt: result.requestedAt, sent: result.sent, quarantined: result.quarantined, failed, next },
          () => {
            const lines = [
              keyValues([
                ['user', username],
                ['server', `${name} (${entry.serverId})`],
                ['request', stateLine(result.status, result.requestedAt, null)],
                ['records', `${result.sent} sent, ${result.quarantined} held by the server until an admin decides`],
                ['failed', failed.length === 0 ? 'none' : `${failed.length} record(s) refused by the server, kept on this phone`],
                ['next', next],
              ]),
            ];
            if (failed.length > 0) {
              lines.push('', table(failed, [
                { header: 'FAILED', value: (f) => (f.id === null ? '(no id)' : `record ${shortId(f.id)}`) },
                { header: 'CODE', value: (f) => `${f.code}${f.field === undefined ? '' : ` (${f.field})`}`, max: 60 },
              ]));
            }
            return lines.join('\n');
          },
        );
      }),
    );

  program
    .command('account-status')
    .summary('where your account request stands on a server: pending, approved or rejected')
    .description(
      'Asks the server how the account request of the user (made with "request-account" from this phone) stands: pending (an admin has ' +
        'not decided yet), approved (log in online with the password you chose on this phone) or rejected. No password is needed: the ' +
        'phone signs the question with its device key, and the server answers only the phone that asked (SIGNUP_NOT_FOUND otherwise).',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .addHelpText('after', '\nExample:\n  fieldvault-field account-status office')
    .action(
      action(async (ctx, server) => {
        const { device, config, username, name, entry, transport } = await requestTarget(ctx, server, 'account-status');
        const status = await inServerTerms(serverRefOf({ name, entry }), config.servers, () => forgettingWipedUser(ctx, () => device.accountStatus(username, { transport })));
        const verified = (await device.users()).some((u) => u.username === username && u.kinds.includes('verified'));
        const next = nextStep(status.status, username, name, config, verified);
        ctx.out.result(
          { user: username, server: { name, serverId: entry.serverId }, status: status.status, requestedAt: status.requestedAt, decidedAt: status.decidedAt, next },
          () =>
            keyValues([
              ['user', username],
              ['server', `${name} (${entry.serverId})`],
              ['request', stateLine(status.status, status.requestedAt, status.decidedAt)],
              ['next', next],
            ]),
        );
      }),
    );
}
