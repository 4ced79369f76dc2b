import ipaddr from 'ipaddr.js';

/**
 * The key one client is counted under by the per-address limits (rate limits, login queue share,
 * sign-ups per hour, connections). An IPv4 address is one client; an IPv4-mapped IPv6 address is
 * its IPv4 address; an IPv6 address counts as its /64, because one subscriber is usually given a
 * whole /64 and could otherwise take a fresh address for every request (security audit M4).
 */
export function clientKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.process(ip);
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}
