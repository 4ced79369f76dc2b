import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { FormDefinitionSchema, defaultChildForm, parseFormDefinition, type FormDefinition } from '@fieldvault/protocol';
import { responses } from '../http/schemas.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The child form this server publishes; pushed records are validated against it. */
    childForm: FormDefinition;
  }
}

/**
 * `GET /v1/forms/child`: the form definition this server publishes (the configured `childForm`,
 * else protocol's `defaultChildForm`). Phones build their registration screens from it and the
 * server validates every pushed record against the same definition.
 */
export const formsPlugin = fp(
  async (app) => {
    const configured = app.fieldvaultConfig.childForm;
    // Validated at start-up (resolveConfig); parsed again here so the type is the protocol's own.
    const form = configured === undefined ? defaultChildForm : parseFormDefinition(configured);
    app.decorate('childForm', form);

    app.withTypeProvider<TypeBoxTypeProvider>().get(
      '/v1/forms/child',
      { onRequest: app.requireAuth(), schema: { response: responses({ 200: FormDefinitionSchema }) } },
      async () => form,
    );
  },
  { name: 'fieldvault-forms', fastify: '5.x', dependencies: ['fieldvault-sessions'] },
);
