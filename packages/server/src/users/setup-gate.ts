/*
 * First-admin setup and restore-into-an-empty-server both turn an empty server into a used one.
 * This gate lets one of them run at a time in this process. It is what tells a live setup claim
 * (its admin is being written right now) from a stale one (left by a crash between setup's two
 * writes): while nothing holds the gate, a claim without its admin user is stale.
 * One server process per store (its data dir or CouchDB prefix) is assumed, as everywhere else.
 */

export type SetupWork = 'setup' | 'restore';

declare module 'fastify' {
  interface FastifyInstance {
    /** Serialises first-admin setup and restore in this process (users/setup-gate.ts). */
    setupGate: SetupGate;
  }
}

export class SetupGate {
  private holder: SetupWork | null = null;

  /** What holds the gate now, or null. */
  get busy(): SetupWork | null {
    return this.holder;
  }

  /** Takes the gate for `work`; false when something holds it already. */
  enter(work: SetupWork): boolean {
    if (this.holder !== null) return false;
    this.holder = work;
    return true;
  }

  leave(): void {
    this.holder = null;
  }
}
