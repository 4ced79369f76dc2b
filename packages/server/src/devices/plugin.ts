import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError, ImeiSchema, KeyRecordSchema } from '@fieldvault/protocol';
import { DEVICE_STATUSES, type DeviceRecord, type DeviceStatus } from '../couch/records.js';
import { iso, isoOrNull, responses } from '../http/schemas.js';
import type { AuthContext } from '../sessions/plugin.js';
import { rekey, type KeyDecision } from './device-keys.js';

const StatusSchema = Type.Union(DEVICE_STATUSES.map((s) => Type.Literal(s)));

/** What admins see of a device: never key material, only the public key record. */
export const DeviceViewSchema = Type.Object(
  {
    imei: Type.String(),
    status: StatusSchema,
    bound: Type.Boolean(),
    boundAt: Type.Union([Type.String(), Type.Null()]),
    firstSeenAt: Type.String(),
    lastSeenAt: Type.String(),
    /** Last push or pull (updated at most every 10 s), null before the first sync. */
    lastSyncAt: Type.Union([Type.String(), Type.Null()]),
    usersSeen: Type.Array(Type.String()),
    key: Type.Union([KeyRecordSchema, Type.Null()]),
    statusChangedAt: Type.Union([Type.String(), Type.Null()]),
    statusChangedBy: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type DeviceView = Static<typeof DeviceViewSchema>;

const DeviceResponse = Type.Object({ device: DeviceViewSchema }, { additionalProperties: false });
const ImeiParams = Type.Object({ imei: ImeiSchema }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    status: Type.Optional(StatusSchema),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    cursor: Type.Optional(ImeiSchema),
  },
  { additionalProperties: false },
);
const ActionBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })) },
  { additionalProperties: false },
);

export function deviceView(d: DeviceRecord): DeviceView {
  return {
    imei: d.imei,
    status: d.status,
    bound: d.publicKey !== null,
    boundAt: isoOrNull(d.boundAt),
    firstSeenAt: iso(d.firstSeenAt),
    lastSeenAt: iso(d.lastSeenAt),
    lastSyncAt: isoOrNull(d.lastSyncAt ?? null),
    usersSeen: [...d.usersSeen],
    key: d.key === null ? null : { ...d.key.record },
    statusChangedAt: isoOrNull(d.statusChangedAt),
    statusChangedBy: d.statusChangedBy,
  };
}

/** Admin device management: list, show, blacklist, retire, reinstate, rekey, unbind. */
export const devicesPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const authority = { kek: app.fieldvaultConfig.kek, clock: app.clock };
  const admin = { onRequest: app.requireAuth(['admin']) };

  /** @throws DEVICE_NOT_FOUND */
  async function modifyExisting(imei: string, mutate: (cur: DeviceRecord) => DeviceRecord | undefined): Promise<DeviceRecord> {
    const result = await app.repo.modifyDevice(imei, (cur) => {
      if (cur === undefined) throw new FieldvaultError('DEVICE_NOT_FOUND');
      return mutate(cur);
    });
    if (result === undefined) throw new FieldvaultError('DEVICE_NOT_FOUND');
    return result;
  }

  r.get(
    '/v1/devices',
    {
      ...admin,
      schema: {
        querystring: ListQuery,
        response: responses({
          200: Type.Object({ devices: Type.Array(DeviceViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
        }),
      },
    },
    async (request) => {
      const { cursor } = request.query;
      // A cursor is the last device of the previous page and devices are never deleted: one that
      // names no device was not issued by this list (an empty page would read as "no more devices").
      if (cursor !== undefined && (await app.repo.getDevice(cursor)) === undefined) {
        throw new FieldvaultError('INPUT_INVALID', {
          detail: 'query.cursor: not a nextCursor of this list; list again without it',
          details: { field: 'query.cursor' },
        });
      }
      const page = await app.repo.listDevices(request.query.status, request.query.limit, cursor);
      return { devices: page.items.map(deviceView), nextCursor: page.nextCursor };
    },
  );

  r.get('/v1/devices/:imei', { ...admin, schema: { params: ImeiParams, response: responses({ 200: DeviceResponse }) } }, async (request) => {
    const device = await app.repo.getDevice(request.params.imei);
    if (device === undefined) throw new FieldvaultError('DEVICE_NOT_FOUND');
    return { device: deviceView(device) };
  });

  const action = { ...admin, schema: { params: ImeiParams, body: ActionBody, response: responses({ 200: DeviceResponse }) } };

  function statusChange(status: DeviceStatus, actor: string, bumpEpoch: boolean) {
    return (cur: DeviceRecord): DeviceRecord | undefined =>
      cur.status === status
        ? undefined
        : { ...cur, status, epoch: bumpEpoch ? cur.epoch + 1 : cur.epoch, statusChangedAt: app.now(), statusChangedBy: actor };
  }

  r.post('/v1/devices/:imei/blacklist', action, async (request) => {
    const actor = (request.auth as AuthContext).username;
    const device = await modifyExisting(request.params.imei, statusChange('blacklisted', actor, true));
    // Sessions stay as revoked markers until they expire so the device learns to wipe.
    const revoked = await app.repo.revokeSessionsOfDevice(device.imei, 'device_blacklisted');
    await app.audit(request, { event: 'device.blacklisted', imei: device.imei, details: { reason: request.body.reason ?? null, sessionsRevoked: revoked } });
    return { device: deviceView(device) };
  });

  r.post('/v1/devices/:imei/retire', action, async (request) => {
    const actor = (request.auth as AuthContext).username;
    // Existing sessions stay valid for the device's last sync; new logins are refused.
    const device = await modifyExisting(request.params.imei, statusChange('retired', actor, false));
    await app.audit(request, { event: 'device.retired', imei: device.imei, details: { reason: request.body.reason ?? null } });
    return { device: deviceView(device) };
  });

  r.post('/v1/devices/:imei/reinstate', action, async (request) => {
    const actor = (request.auth as AuthContext).username;
    const reactivate = statusChange('active', actor, false);
    let previousStatus: DeviceStatus | undefined;
    let bindingCleared = false;
    const device = await modifyExisting(request.params.imei, (cur) => {
      previousStatus = cur.status;
      const next = reactivate(cur);
      // A blacklisted phone wipes its device key when told so: its next login offers a new key,
      // which the old binding would refuse as DEVICE_BINDING_MISMATCH (the signal of a phone
      // claiming another's IMEI). So a reinstate unbinds it too, as `unbind` does, and that login
      // enrols again (operator audit s10, item 4).
      bindingCleared = next !== undefined && cur.status === 'blacklisted' && cur.publicKey !== null;
      return next === undefined || cur.status !== 'blacklisted' ? next : { ...next, publicKey: null, boundAt: null, epoch: cur.epoch + 1 };
    });
    await app.audit(request, {
      event: 'device.reinstated',
      imei: device.imei,
      details: { reason: request.body.reason ?? null, previousStatus: previousStatus ?? null, bindingCleared },
    });
    return { device: deviceView(device) };
  });

  r.post('/v1/devices/:imei/rekey', action, async (request) => {
    let decision: KeyDecision | undefined;
    const device = await modifyExisting(request.params.imei, (cur) => {
      decision = rekey(authority, cur.imei, cur.key);
      return { ...cur, key: decision.stored };
    });
    const d = decision as KeyDecision;
    await app.audit(request, {
      event: 'key.rekeyed',
      imei: device.imei,
      details: { keyId: d.stored.record.keyId, issuedAt: d.stored.record.issuedAt, previousKeyId: d.previousKeyId, reason: request.body.reason ?? null },
    });
    return { device: deviceView(device) };
  });

  r.post('/v1/devices/:imei/unbind', action, async (request) => {
    // The next login from this IMEI enrols its key afresh (a reset phone, a new SDK install).
    const device = await modifyExisting(request.params.imei, (cur) => ({ ...cur, publicKey: null, boundAt: null, epoch: cur.epoch + 1 }));
    const revoked = await app.repo.deleteSessionsOfDevice(device.imei);
    await app.audit(request, { event: 'device.unbound', imei: device.imei, details: { reason: request.body.reason ?? null, sessionsRevoked: revoked } });
    return { device: deviceView(device) };
  });
};
