import type { Command } from 'commander';
import { setPasswordWithToken } from '@fieldvault/client';
import { inServerTerms, serverOf, serverRefOf, transportOf } from '../context.js';
import { keyValues } from '../output.js';
import type { Action } from './action.js';

/*
 * Invitations and password resets (field audit, item 2): `fieldvault-admin users add amina` (or
 * `users reset-password`) gives the admin a single-use token for amina; she chooses her own password
 * with it here. The token is a secret like a password: it is asked without echo (or read from
 * standard input), sent in the request body over the server's verified TLS, and never printed.
 */

export function registerSetPasswordCommand(program: Command, action: Action): void {
  program
    .command('set-password')
    .summary('choose your server password with the invitation or reset token an admin gave you')
    .description(
      'When an admin creates your account ("fieldvault-admin users add NAME") or resets your password, they get a one-time token for you. ' +
        'This command asks for the token and your new password (neither is shown as you type; with --password-stdin give the token, then the ' +
        'password, on two lines), checks the password against the servers\' rules (at least 15 characters, not a common one) and sets it on ' +
        'the server. Then log in online with it ("login"). The token works once and expires; a refused password leaves it usable. ' +
        'Nothing on this phone changes: if you signed up here offline with another password, "login" tells you how to bring those records along.',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .addHelpText('after', '\nExample:\n  fieldvault-field servers add office https://10.0.0.5:8443 --pin 52:D6:E2:…:9F\n  fieldvault-field set-password office\n  fieldvault-field --user amina login office')
    .action(
      action(async (ctx, server) => {
        const config = ctx.home.read() ?? ctx.home.ensure().config;
        const { name, entry } = serverOf(config, server as string | undefined, 'set-password');
        const username = ctx.globals.user;
        const token = await ctx.passwords.ask('Invitation or reset token');
        const password = await ctx.passwords.ask('New password', { confirm: true });
        const transport = transportOf(entry);
        try {
          const set = await inServerTerms(serverRefOf({ name, entry }), config.servers, () =>
            setPasswordWithToken({ transport, token: token.trim(), password, ...(username === undefined ? {} : { username }) }),
          );
          const cli = `fieldvault-field${config.currentUser === set.username ? '' : ` --user ${set.username}`}`;
          const next = `log in online with it: "${cli} login ${name}"`;
          ctx.out.result({ user: set.username, role: set.role, server: { name, serverId: entry.serverId }, next }, () =>
            keyValues([
              ['user', `${set.username} (${set.role})`],
              ['server', `${name} (${entry.serverId})`],
              ['password', 'set; the token is used up, and any other session of this user on that server was ended'],
              ['next', next],
            ]),
          );
        } finally {
          transport.close();
        }
      }),
    );
}
