import type { Command } from 'commander';
import { CliError } from '../errors.js';

/**
 * `help [command...]`: commander's own help command takes one name, so `help devices reinstate`
 * printed the help of `devices` (operator audit s10, item 10), while errors send admins to
 * "help <command>". This one follows the whole path, as the field CLI's does.
 */
export function registerHelpCommand(program: Command): void {
  program.helpCommand(false);
  program
    .command('help')
    .summary('show the help of a command (e.g. "help devices reinstate")')
    .description('Shows the help of the command named, e.g. "fieldvault-admin help devices reinstate"; with no command, the main help.')
    .argument('[command...]', 'a command, or a group and its command')
    .action((names: string[]) => {
      let command: Command = program;
      for (const [i, name] of names.entries()) {
        const next = command.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (next === undefined) {
          const known = command.commands.map((c) => c.name()).filter((n) => n !== 'help');
          throw new CliError('ADMIN_USAGE', `help: no command "${names.slice(0, i + 1).join(' ')}" (commands${command === program ? '' : ` of ${command.name()}`}: ${known.join(', ')})`);
        }
        command = next;
      }
      command.help();
    });
}
