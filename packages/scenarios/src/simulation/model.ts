import type { Phone } from '../phone.js';

/** One step of a simulation. Plain data: the report prints it and a failing run lists them. */
export type Action =
  | { readonly kind: 'sign-up-offline'; readonly phone: string; readonly user: string }
  | { readonly kind: 'login-offline'; readonly phone: string; readonly user: string }
  | { readonly kind: 'login-online'; readonly phone: string; readonly user: string; readonly server: string }
  | { readonly kind: 'create-record'; readonly phone: string; readonly photo: boolean }
  /** `record`: the index of the record in the order the simulation created them (ids are random; indexes replay). */
  | { readonly kind: 'edit-record'; readonly phone: string; readonly record: number; readonly notes: string }
  | { readonly kind: 'sync'; readonly phone: string; readonly server: string }
  | { readonly kind: 'logout'; readonly phone: string }
  | { readonly kind: 'rekey'; readonly server: string; readonly phone: string }
  | { readonly kind: 'restart-server'; readonly server: string; readonly how: 'kill' | 'stop' }
  | {
      readonly kind: 'kill-phone';
      readonly phone: string;
      readonly user: string;
      readonly server: string;
      /** Where the phone process is kill -9'd: mid-push, mid-pull, or mid-migration (if one happens). */
      readonly at: 'push' | 'pull' | 'migration';
    };

/** What the simulation knows a phone should hold. */
export interface PhoneModel {
  readonly name: string;
  readonly phone: Phone;
  /** Users with keys on the phone: `unverified` (signed up offline, never online) or `server` (a server key). */
  readonly users: Map<string, 'unverified' | 'server'>;
  /** The open session: its user and the servers it is logged in to. */
  session: { readonly user: string; readonly servers: Set<string> } | null;
}

/** A record the simulation created, and every notes value written to it. */
export interface RecordModel {
  readonly id: string;
  readonly phone: string;
  readonly creator: string;
  readonly notes: string[];
}

/** Which servers have seen a device (so a rekey has something to rotate). */
export type ServerDevices = Map<string, Set<string>>;

export function describe(a: Action): string {
  switch (a.kind) {
    case 'sign-up-offline':
      return `${a.phone}: ${a.user} signs up offline`;
    case 'login-offline':
      return `${a.phone}: ${a.user} logs in offline`;
    case 'login-online':
      return `${a.phone}: ${a.user} logs in online to ${a.server}`;
    case 'create-record':
      return `${a.phone}: create a record${a.photo ? ' with a photo' : ''}`;
    case 'edit-record':
      return `${a.phone}: edit record #${a.record}`;
    case 'sync':
      return `${a.phone}: sync with ${a.server}`;
    case 'logout':
      return `${a.phone}: log out`;
    case 'rekey':
      return `${a.server}: admin rekeys ${a.phone}`;
    case 'restart-server':
      return `${a.server}: ${a.how === 'kill' ? 'kill -9 and restart' : 'stop and restart'}`;
    case 'kill-phone':
      return `${a.phone}: ${a.user} logs in to ${a.server}, registers 2 records and syncs in a process killed -9 mid-${a.at}`;
  }
}
