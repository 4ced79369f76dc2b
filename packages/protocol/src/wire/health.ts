/**
 * `GET /v1/health` on the wire: the unauthenticated probe of load balancers, service watchdogs and
 * monitoring. 200 with exactly this body when the server reaches its store; 503 with the
 * catalogued STORE_UNAVAILABLE error body otherwise. Deliberately nothing else (no version, no
 * server id, no store address): an unauthenticated caller learns only up or down. See docs/protocol.md.
 */
import { Type, type Static } from '@sinclair/typebox';

export const HEALTH_PATH = '/v1/health';

export const HealthSchema = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false });
export type Health = Static<typeof HealthSchema>;
