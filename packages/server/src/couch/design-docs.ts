/**
 * Map functions of the server's views, one design document per database. ES5 on purpose: CouchDB
 * 3.x runs them in SpiderMonkey/QuickJS and the embedded stand-in in its own evaluator. No
 * `validate_doc_update` (the stand-in drops replicated writes when one exists, TOOLCHAIN.md):
 * all validation happens in the server before a write.
 */

/** Bump when a view changes; `init()` then rewrites the design document. */
export const DESIGN_VERSION = 1;
export const DESIGN_NAME = 'fieldvault';

export interface DesignViews {
  readonly [view: string]: { readonly map: string };
}

export const usersViews: DesignViews = {
  enabled_by_role: {
    map: "function (doc) { if (doc.type === 'user' && !doc.disabled) { emit(doc.role, null); } }",
  },
};

export const devicesViews: DesignViews = {
  by_status: {
    map: "function (doc) { if (doc.type === 'device') { emit([doc.status, doc.imei], null); } }",
  },
};

export const sessionsViews: DesignViews = {
  sessions_by_user: {
    map: "function (doc) { if (doc.type === 'session') { emit(doc.username, doc._rev); } }",
  },
  sessions_by_device: {
    map: "function (doc) { if (doc.type === 'session') { emit(doc.imei, doc._rev); } }",
  },
  by_expiry: {
    map: "function (doc) { if (typeof doc.expiresAt === 'number') { emit(doc.expiresAt, doc._rev); } }",
  },
};

export const auditViews: DesignViews = {
  by_time: {
    map: "function (doc) { if (doc.type === 'audit') { emit([doc.at, doc._id], null); } }",
  },
  by_user: {
    map:
      "function (doc) { if (doc.type !== 'audit') { return; } " +
      'if (doc.username) { emit([doc.username, doc.at, doc._id], null); } ' +
      'if (doc.actor && doc.actor !== doc.username) { emit([doc.actor, doc.at, doc._id], null); } }',
  },
  by_device: {
    map: "function (doc) { if (doc.type === 'audit' && doc.imei) { emit([doc.imei, doc.at, doc._id], null); } }",
  },
  by_event: {
    map: "function (doc) { if (doc.type === 'audit') { emit([doc.event, doc.at, doc._id], null); } }",
  },
};
