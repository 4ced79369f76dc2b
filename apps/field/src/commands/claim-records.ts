import type { Command } from 'commander';
import { FieldvaultError } from '@fieldvault/protocol';
import { withSession } from '../context.js';
import { keyValues } from '../output.js';
import type { Action } from './action.js';

/*
 * Records stranded by two passwords (field audit, item 1): a user signs up offline with password
 * L, records children, then logs in online with her server password S (set with an invitation
 * token). The flow-1 move needs the unverified key, which only L opens, so the login leaves those
 * records where they are — in an unverified database that no sync reads. This command opens the
 * verified database with S (an offline login), asks L, and has the SDK move the records
 * (`Session.claimUnverifiedRecords`: journaled, crash-safe, the emptied database deleted). The
 * next sync pushes them.
 */

export function registerClaimCommand(program: Command, action: Action): void {
  program
    .command('claim-records')
    .summary('move your records from an offline sign-up into the verified database when you log in with another password now')
    .description(
      'For a user who signed up offline on this phone with one password and now logs in with another (e.g. the one set with an ' +
        'invitation token on the server): the records made before the first online login stay in an unverified database that the new ' +
        'password does not open, and never sync ("login" and "status" warn about it). This command asks your current password (as every ' +
        'command does), then the password you chose on this phone at "signup", and moves those records and their photos into the database ' +
        'you see now. They keep their ids; the next "sync" sends them. A wrong phone password changes nothing (VAULT_WRONG_PASSWORD). ' +
        'The move is crash-safe: if it is interrupted, the next login finishes it. With --password-stdin give the two passwords on two lines.',
    )
    .addHelpText('after', '\nExample:\n  fieldvault-field login office          # warns: unverified records left behind\n  fieldvault-field claim-records\n  fieldvault-field sync office')
    .action(
      action(async (ctx) => {
        await withSession(ctx, { offline: true }, async ({ session, username }) => {
          if (session.kind === 'unverified') {
            throw new FieldvaultError('VAULT_FORBIDDEN', {
              detail: 'this password opens only your unverified database: run the command with the password of your online login (the server\'s); it then asks the one chosen on this phone',
            });
          }
          const locked = session.unverifiedRecordsLocked;
          const moved = locked
            ? await session.claimUnverifiedRecords(await ctx.passwords.ask(`Password ${username} chose on this phone at sign-up`))
            : // Nothing locked: a move this password can do itself (none, usually).
              await session.moveUnverifiedRecords();
          ctx.out.result({ user: username, database: session.kind, moved: moved.records, photos: moved.photos, left: false }, () =>
            keyValues([
              ['user', username],
              [
                'moved',
                locked || moved.records > 0
                  ? `${moved.records} record(s) and ${moved.photos} photo(s) into the ${session.kind} database; "sync" sends them`
                  : 'nothing: you have no unverified records left behind on this phone',
              ],
            ]),
          );
        });
      }),
    );
}
