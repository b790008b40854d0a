/** `rotateEncryptionKey`: re-encrypts every secret at rest (see secrets-rotation.ts). ADMIN only. */
import { builder } from '../../graphql/builder.js';
import { ForbiddenError } from '../../errors.js';
import { isInstanceAdmin } from '../workspace/workspace.service.js';
import { runAsSystem } from '../../tenancy/scope.js';
import type { RotationResult } from './secrets.service.js';

const RotateEncryptionKeyPayload = builder.objectRef<RotationResult>('RotateEncryptionKeyPayload').implement({
  fields: (t) => ({
    keyId: t.exposeString('keyId', { description: 'The primary key every secret is encrypted with now.' }),
    retiredKeyIds: t.exposeStringList('retiredKeyIds', { description: 'Keys removed from the key file (empty when keys come from SLUICE_SECRET_KEYS).' }),
    connectors: t.exposeInt('connectors', { description: 'Connectors whose secret config fields were re-encrypted.' }),
    authentications: t.exposeInt('authentications', { description: 'Authentications re-encrypted.' }),
    webhooks: t.exposeInt('webhooks', { description: 'Webhook endpoints whose signing secrets were re-encrypted.' }),
  }),
});

builder.mutationFields((t) => ({
  rotateEncryptionKey: t.field({
    type: RotateEncryptionKeyPayload,
    description:
      'Re-encrypts every stored secret (connectors, authentications, webhooks; every workspace) under the primary key. ' +
      'With the generated key file a new primary key is created first and the old ones are dropped once everything is re-encrypted; ' +
      'with SLUICE_SECRET_KEYS the first configured key is the target. Instance-wide: needs an ADMIN key of the default workspace.',
    resolve: (_r, _a, ctx) => {
      if (!isInstanceAdmin(ctx.auth)) throw new ForbiddenError('only an ADMIN key of the default workspace can rotate the encryption key', 'ADMIN');
      // Every workspace's secrets are re-encrypted.
      return runAsSystem(() => ctx.services.secrets.rotate());
    },
  }),
}));
