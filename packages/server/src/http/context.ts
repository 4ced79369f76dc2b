import type { HlcClock } from '@fieldvault/protocol';
import type { ServerConfig } from '../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated, frozen configuration (holds the KEK: never log it). */
    fieldvaultConfig: ServerConfig;
    /** Wall clock in ms (a fake in tests). */
    now(): number;
    /** This server's hybrid logical clock (node id = serverId). */
    clock: HlcClock;
  }
}

export {};
