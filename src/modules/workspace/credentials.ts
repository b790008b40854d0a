/**
 * Who is calling, from an HTTP request or a graphql-ws connection.
 *
 * Contract:
 * - A presented key (`Authorization: Bearer <key>`; over graphql-ws the connection params
 *   `{ authorization: "Bearer <key>" }` or `{ apiKey: "<key>" }`, else the upgrade request's
 *   header) is always checked: unknown, revoked or expired → `invalid`.
 * - Without a key, trusted local access (the default workspace, ADMIN) is granted only when
 *   local access is enabled and the request is local in every respect: the peer is a loopback
 *   address, no proxy forwarding header is present (a reverse proxy on the same host would
 *   otherwise make every client local), the Host header names a loopback host (defeats DNS
 *   rebinding) and any Origin is a loopback origin (a web page elsewhere cannot drive a browser
 *   into it — WebSockets have no CORS). Anything else → `missing`.
 * - A refused key (`invalid`, `malformed`) is logged (warn "API key refused") with the reason,
 *   the peer address, the request id when the caller passes one, and the key's display prefix
 *   (`sk_` + 8 characters, as stored) when it looks like a key — never the key itself.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Logger } from '../../logger.js';
import { isLoopbackName } from '../../security/outbound-guard.js';
import { LOCAL_AUTH, type WorkspaceService } from './workspace.service.js';
import type { AuthContext } from '../../tenancy/scope.js';

export type Credentials =
  | { ok: true; auth: AuthContext }
  /** `keyPrefix`: the display prefix of a refused key (see loggableKeyPrefix). */
  | { ok: false; reason: 'missing' | 'invalid' | 'malformed'; keyPrefix?: string };

/** A loopback address (IPv4-mapped IPv6 included) in its usual notation. */
function isLoopbackAddress(addr: string | undefined): boolean {
  return !!addr && net.isIP(addr) !== 0 && ipaddr.process(addr).range() === 'loopback';
}

/** `[::1]:4000` → `::1`; `localhost:4000` → `localhost` */
function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    return end < 0 ? '' : hostHeader.slice(1, end).toLowerCase();
  }
  return hostHeader.split(':')[0]!.toLowerCase();
}

function isLoopbackHost(name: string): boolean {
  return isLoopbackName(name) || isLoopbackAddress(name);
}

/** True when the request comes from this machine and nothing suggests otherwise. */
function isLocalRequest(req: IncomingMessage): boolean {
  if (!isLoopbackAddress(req.socket.remoteAddress)) return false;
  const h = req.headers;
  if (h['x-forwarded-for'] || h['forwarded'] || h['x-real-ip'] || h['x-forwarded-host']) return false;
  if (!h.host || !isLoopbackHost(hostnameOf(h.host))) return false;
  const origin = h.origin;
  if (origin !== undefined) {
    try {
      if (!isLoopbackHost(hostnameOf(new URL(origin).host))) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** `Bearer <key>` → key; undefined when absent; null when present but not a bearer credential. */
function bearerToken(header: string | undefined): string | null | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** What of a refused key may be logged: the display prefix of something shaped like a key, nothing else. */
export function loggableKeyPrefix(key: string | null | undefined): string | undefined {
  return key && key.startsWith('sk_') && key.length >= 20 ? key.slice(0, 11) : undefined;
}

export class Authenticator {
  constructor(
    private readonly workspaces: WorkspaceService,
    private readonly localAccess: boolean,
    private readonly log?: Logger,
  ) {}

  /**
   * The caller of an HTTP request (or a WebSocket upgrade with `presented` from its params);
   * `requestId` only goes into the log line of a refused key.
   */
  async resolve(req: IncomingMessage, presented?: unknown, requestId?: string): Promise<Credentials> {
    const credentials = await this.check(req, presented);
    if (!credentials.ok && credentials.reason !== 'missing') {
      this.log?.warn(
        { reason: credentials.reason, keyPrefix: credentials.keyPrefix, remoteAddress: req.socket.remoteAddress, ...(requestId ? { requestId } : {}) },
        'API key refused',
      );
    }
    return credentials;
  }

  private async check(req: IncomingMessage, presented?: unknown): Promise<Credentials> {
    let key: string | null | undefined;
    if (presented !== undefined && presented !== null && presented !== '') {
      key = typeof presented === 'string' ? (presented.startsWith('sk_') ? presented : bearerToken(presented)) : null;
    } else {
      const header = req.headers.authorization;
      key = bearerToken(Array.isArray(header) ? header[0] : header);
    }
    if (key === null) return { ok: false, reason: 'malformed' };
    if (key !== undefined) {
      const auth = await this.workspaces.authenticate(key);
      if (auth) return { ok: true, auth };
      const keyPrefix = loggableKeyPrefix(key);
      return { ok: false, reason: 'invalid', ...(keyPrefix ? { keyPrefix } : {}) };
    }
    if (this.localAccess && isLocalRequest(req)) return { ok: true, auth: LOCAL_AUTH };
    return { ok: false, reason: 'missing' };
  }

  /** Re-checks a key still valid (revocation during a long-lived WebSocket). */
  async stillValid(auth: AuthContext): Promise<boolean> {
    if (auth.expiresAt && auth.expiresAt.getTime() <= Date.now()) return false;
    return auth.apiKeyId === null || (await this.workspaces.isActive(auth.apiKeyId));
  }
}

export const UNAUTHENTICATED_MESSAGES: Record<'missing' | 'invalid' | 'malformed', string> = {
  missing: 'An API key is required: send `Authorization: Bearer <key>` (graphql-ws: connection params `{ "authorization": "Bearer <key>" }`). Only local requests to a local server are served without one.',
  invalid: 'The API key is unknown, revoked or expired.',
  malformed: 'The Authorization header must be `Bearer <key>`.',
};
