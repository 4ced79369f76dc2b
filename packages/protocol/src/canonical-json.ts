/**
 * Canonical JSON: object keys sorted, members whose value is `undefined` left out (as JSON does),
 * arrays in their order. Two records with the same content have the same canonical JSON whatever
 * order their keys were built in, so it is what "identical" means when servers and phones are
 * compared: the scenario harness's convergence checks and the admin's records digest
 * (packages/server, records-digest) both use it.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
