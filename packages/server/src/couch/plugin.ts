import fp from 'fastify-plugin';
import { createCouchRepository, type CouchRepository } from './couch-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The CouchDB repository: the only way the server reaches its store. */
    repo: CouchRepository;
  }
}

export interface CouchPluginOptions {
  readonly url: string;
  readonly dbPrefix: string;
}

/** Creates the databases on first start (reusing them later) and decorates `app.repo`. */
export const couchPlugin = fp<CouchPluginOptions>(
  async (app, options) => {
    const repo = createCouchRepository({ url: options.url, dbPrefix: options.dbPrefix });
    await repo.init();
    app.decorate('repo', repo);
  },
  { name: 'fieldvault-couch', fastify: '5.x' },
);
