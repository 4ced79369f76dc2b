/**
 * Where the plain-HTTP listener may send a client (security audit L1): it used to copy any Host
 * header into `Location`, so a link to `http://<server>/` with a forged Host sent the phone or
 * browser to a host of the attacker's choice over HTTPS.
 */
import { hostname, networkInterfaces } from 'node:os';

export interface RedirectTargets {
  /** Host names/addresses (lower case, IPv6 in brackets) a Host header may name. */
  readonly allowed: ReadonlySet<string>;
  /** Where an unknown Host goes; null → refused with 400 INPUT_HOST_UNKNOWN. */
  readonly fallback: string | null;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * With FIELDVAULT_PUBLIC_HOST set, only those names are used: a Host that names one of them is
 * kept (phones may know the server by more than one), any other goes to the first — the admin
 * chose it, so it is safe. Without it, the server does not know its public name: it accepts the
 * names and addresses of this machine (what a phone on the network can reach it by) and refuses
 * others rather than guess.
 */
export function redirectTargets(listenHost: string, publicHosts: readonly string[]): RedirectTargets {
  if (publicHosts.length > 0) return { allowed: new Set(publicHosts), fallback: publicHosts[0] ?? null };
  const allowed = new Set<string>(['localhost', hostname().toLowerCase()]);
  if (!WILDCARDS.has(listenHost)) allowed.add(asHostHeader(listenHost.toLowerCase()));
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) allowed.add(asHostHeader(a.address.toLowerCase().replace(/%.*$/, '')));
  }
  return { allowed, fallback: null };
}

function asHostHeader(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/** The host part of a Host header (no port), lower case; '' when absent or malformed. */
export function hostOf(header: string | undefined): string {
  const h = (header ?? '').trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]{1,253})(?::\d{1,5})?$/.exec(h);
  return m?.[1]?.replace(/\.$/, '') ?? '';
}

/** The host to redirect a request with this Host header to, or null to refuse it. */
export function redirectHost(targets: RedirectTargets, header: string | undefined): string | null {
  const host = hostOf(header);
  return targets.allowed.has(host) ? host : targets.fallback;
}
