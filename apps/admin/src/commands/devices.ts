import { Option, type Command } from 'commander';
import { IMEI_PATTERN } from '@fieldvault/protocol';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { keyValues, table, timeOf } from '../output.js';
import { HELP_DEVICE_SCOPE, deviceScopeLine } from '../scope.js';
import type { Action } from './action.js';
import { fetchAll } from './paging.js';

interface KeyRecordView {
  readonly keyId: string;
  readonly issuedAt: string;
  readonly issuer: string;
}

export interface DeviceView {
  readonly imei: string;
  readonly status: string;
  readonly bound: boolean;
  readonly boundAt: string | null;
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
  readonly lastSyncAt: string | null;
  readonly usersSeen: string[];
  readonly key: KeyRecordView | null;
  readonly statusChangedAt: string | null;
  readonly statusChangedBy: string | null;
}

function imeiOf(value: string): string {
  if (!IMEI_PATTERN.test(value)) throw new CliError('ADMIN_USAGE', `"${value}" is not an IMEI (15 digits)`);
  return value;
}

function deviceLines(d: DeviceView): string {
  return keyValues([
    ['IMEI', d.imei],
    ['status', d.status + (d.statusChangedBy === null ? '' : ` (by ${d.statusChangedBy}, ${timeOf(d.statusChangedAt)})`)],
    ['bound', d.bound ? `yes, since ${timeOf(d.boundAt)}` : 'no (the next login enrols its device key)'],
    ['first seen', timeOf(d.firstSeenAt)],
    ['last seen', timeOf(d.lastSeenAt)],
    ['last sync', timeOf(d.lastSyncAt)],
    ['users seen', d.usersSeen.length === 0 ? '—' : d.usersSeen.join(', ')],
    ['key', d.key === null ? '—' : `${d.key.keyId} (issued ${d.key.issuedAt} by ${d.key.issuer})`],
  ]);
}

/** What each action does (help text, confirmation prompt), and whether other servers need it too. */
const ACTIONS = {
  blacklist: { wipes: true, perServer: true, text: `stolen or lost: refuse it, end its sessions; the phone wipes its data on its next contact ${HELP_DEVICE_SCOPE}` },
  retire: { wipes: true, perServer: true, text: `take out of service: its known users get a last sync, then the phone wipes itself ${HELP_DEVICE_SCOPE}` },
  reinstate: { wipes: false, perServer: false, text: 'make a blacklisted or retired device active again (a blacklisted one is unbound too: it wiped its device key)' },
  rekey: { wipes: false, perServer: false, text: 'issue a new database key for it (the phone migrates at its next login)' },
  unbind: { wipes: false, perServer: false, text: 'forget its enrolled device key (reset phone, new app install); its next login enrols again' },
} as const;

/** What a reinstate did to the device key binding, and what is left to do. */
function reinstateNote(before: DeviceView, after: DeviceView, bindingCleared: boolean): string {
  if (bindingCleared) {
    return '\nIts device key binding was cleared too (as "devices unbind" does): the phone wiped its device key when it was told it was blacklisted, so its next login enrols a new one.';
  }
  if (before.status === 'retired' && after.bound) {
    return `\nIf the phone wiped itself after its final sync, run "fieldvault-admin devices unbind ${after.imei}" too: its next login offers a new device key.`;
  }
  return '';
}

async function confirm(ctx: Context, imei: string, verb: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!ctx.env.stdinIsTty || ctx.globals.stdin === true) throw new CliError('ADMIN_NOT_CONFIRMED', `${verb} ${imei}`);
  const typed = await ctx.prompter.ask(`This will ${verb} ${imei} and make the phone wipe its data. Type the IMEI to confirm`, { secret: false });
  if (typed.trim() !== imei) throw new CliError('ADMIN_NOT_CONFIRMED', 'the IMEI typed does not match');
}

export function registerDeviceCommands(program: Command, action: Action): void {
  const devices = program.command('devices').description('devices (phones): list, show, blacklist, retire, reinstate, rekey, unbind');

  devices
    .command('list')
    .description('list devices (one page; --all for every page)')
    .addOption(new Option('--status <status>', 'only devices in this state').choices(['active', 'blacklisted', 'retired']))
    .option('--limit <n>', 'devices per page (1..500)', '100')
    .option('--all', 'fetch every page')
    .action(
      action(async (ctx, opts) => {
        const o = opts as { status?: string; limit: string; all?: boolean };
        const list = await fetchAll<DeviceView, 'devices'>(ctx, '/v1/devices', 'devices', { status: o.status }, o.limit, o.all === true);
        ctx.out.result(list, () =>
          list.devices.length === 0
            ? 'No devices.'
            : table(list.devices, [
                { header: 'IMEI', value: (d) => d.imei },
                { header: 'STATUS', value: (d) => d.status },
                { header: 'BOUND', value: (d) => (d.bound ? 'yes' : 'no') },
                { header: 'LAST SEEN', value: (d) => timeOf(d.lastSeenAt) },
                { header: 'LAST SYNC', value: (d) => timeOf(d.lastSyncAt) },
                { header: 'USERS', value: (d) => d.usersSeen.join(', '), max: 30 },
                { header: 'KEY', value: (d) => d.key?.keyId.slice(0, 12) ?? '—' },
              ]) + (list.nextCursor === null ? '' : '\n(more: use --all)'),
        );
      }),
    );

  devices
    .command('show <imei>')
    .description('show one device (never its key, only the key record)')
    .action(
      action(async (ctx, imei) => {
        const { device } = await ctx.api<{ device: DeviceView }>({ method: 'GET', path: `/v1/devices/${imeiOf(imei as string)}` });
        ctx.out.result({ device }, () => deviceLines(device));
      }),
    );

  for (const [verb, spec] of Object.entries(ACTIONS)) {
    const c = devices
      .command(`${verb} <imei>`)
      .description(spec.text)
      .option('--reason <text>', 'why (kept in the audit log)');
    if (spec.wipes) c.option('-y, --yes', 'do not ask for confirmation');
    c.action(
      action(async (ctx, imei, opts) => {
        const o = opts as { reason?: string; yes?: boolean };
        const id = imeiOf(imei as string);
        if (spec.wipes) await confirm(ctx, id, verb, o.yes === true);
        // What it was before a reinstate, to say what the reinstate did to the binding.
        const before = verb === 'reinstate' ? (await ctx.api<{ device: DeviceView }>({ method: 'GET', path: `/v1/devices/${id}` })).device : undefined;
        const { device } = await ctx.api<{ device: DeviceView }>({
          method: 'POST',
          path: `/v1/devices/${id}/${verb}`,
          body: o.reason === undefined ? {} : { reason: o.reason },
        });
        if (before === undefined) {
          const scope = spec.perServer ? `\n${deviceScopeLine(ctx, verb, id)}` : '';
          ctx.out.result({ device }, () => `${verb}: done.\n${deviceLines(device)}${scope}`);
          return;
        }
        const bindingCleared = before.bound && !device.bound;
        ctx.out.result({ device, bindingCleared }, () => `${verb}: done.\n${deviceLines(device)}${reinstateNote(before, device, bindingCleared)}`);
      }),
    );
  }
}
