import type { Logger } from '../logger.js';
import type { PrismaClient } from '../db/client.js';
import type { Services } from '../services.js';
import type { AuthContext } from '../tenancy/scope.js';

/** What every resolver sees, over HTTP, WebSocket and SSE alike. */
export interface GraphQLContext {
  requestId: string;
  log: Logger;
  db: PrismaClient;
  services: Services;
  /** The authenticated caller (workspace, key, scope); set before any resolver runs. */
  auth: AuthContext;
}
