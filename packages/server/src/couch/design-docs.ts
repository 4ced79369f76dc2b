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
  readonly [view: string]: { readonly map: string; readonly reduce?: string };
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

/** Longest word kept in the search index (and of a search word). */
export const SEARCH_TOKEN_MAX_LENGTH = 64;
/** Most distinct words of one field kept in the search index. */
export const SEARCH_TOKENS_MAX = 32;
/** What splits a text into words: white space and ASCII punctuation (same regex in the view and the server). */
export const SEARCH_TOKEN_SPLIT = /[\s!-/:-@[-`{-~]+/;

/**
 * The record search index: one view, keys tagged by what they index, the document id last so
 * every key is unique and a page can start right after the previous one:
 * - `['n', word, id]` / `['l', word, id]`: each distinct lowercase word of `name` / `location`;
 *   the value is the sorted list of all its words (the server picks one row per record per query);
 * - `['a', age, id]`: a numeric `age`;
 * - `['f', flag, id]`: a boolean field that is `true` (flagged, reunited, …);
 * - `['c', createdBy, id]`.
 * The server re-checks every criterion on the record itself; the index only narrows the scan.
 */
export const recordsViews: DesignViews = {
  search: {
    map: String.raw`function (doc) {
  if (doc.type !== 'record' || !doc.record || !doc.record.fields) { return; }
  var fields = doc.record.fields;
  var has = Object.prototype.hasOwnProperty;
  function value(name) { return has.call(fields, name) && fields[name] ? fields[name].value : null; }
  function words(v) {
    if (typeof v !== 'string') { return []; }
    var parts = v.toLowerCase().split(${SEARCH_TOKEN_SPLIT.toString()});
    var seen = {}, out = [];
    for (var i = 0; i < parts.length; i++) {
      var w = parts[i].substring(0, ${SEARCH_TOKEN_MAX_LENGTH});
      if (w.length > 0 && !has.call(seen, w)) { seen[w] = true; out.push(w); }
    }
    out.sort();
    return out.slice(0, ${SEARCH_TOKENS_MAX});
  }
  var name = words(value('name'));
  for (var n = 0; n < name.length; n++) { emit(['n', name[n], doc._id], name); }
  var loc = words(value('location'));
  for (var l = 0; l < loc.length; l++) { emit(['l', loc[l], doc._id], loc); }
  var age = value('age');
  if (typeof age === 'number' && isFinite(age)) { emit(['a', age, doc._id], null); }
  for (var f in fields) {
    if (has.call(fields, f) && f !== '_deleted' && fields[f] && fields[f].value === true) { emit(['f', f, doc._id], null); }
  }
  if (typeof doc.record.createdBy === 'string') { emit(['c', doc.record.createdBy, doc._id], null); }
}`,
  },
};

/**
 * Upload quotas (security audit M2): a design document of its own, so adding it does not rebuild
 * the other views of the photos database on a real CouchDB (which indexes all views of one design
 * document together) and `DESIGN_VERSION` stays as it is.
 */
export const UPLOAD_QUOTA_DESIGN = 'fieldvault-upload-quota';
export const UPLOAD_QUOTA_VERSION = 1;

/** The declared size of each unfinished upload by the user who started it; `_sum` gives a user's pending bytes. */
export const uploadQuotaViews: DesignViews = {
  pending_bytes_by_user: {
    map: "function (doc) { if (doc.type === 'upload' && typeof doc.startedBy === 'string' && typeof doc.size === 'number') { emit(doc.startedBy, doc.size); } }",
    reduce: '_sum',
  },
};

export const photosViews: DesignViews = {
  uploads_by_expiry: {
    map: "function (doc) { if (doc.type === 'upload' && typeof doc.expiresAt === 'number') { emit(doc.expiresAt, doc._rev); } }",
  },
};

/** The quarantine database of pending sign-ups (signup-store.ts). */
export const pendingViews: DesignViews = {
  signups_by_status: {
    map: "function (doc) { if (doc.type === 'signup') { emit([doc.status, doc.username], null); } }",
  },
};
