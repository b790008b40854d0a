/**
 * The open sockets and streams of this process, by API key, so that revoking a key or
 * reaching its expiry ends them instead of letting them deliver on.
 *
 * Contract:
 * - `track(auth, end)` registers one live connection (a graphql-ws socket, an SSE stream) of
 *   a key; the returned function unregisters it (the connection ended by itself). Keyless
 *   local access (`apiKeyId: null`) is not tracked.
 * - `end(reason)` is called at most once per tracked connection: `'expired'` by one timer
 *   armed for the earliest `expiresAt` of the tracked keys (it fires within a few ms of it),
 *   `'revoked'` as soon as this process hears of a revocation on the pub/sub topic
 *   `apiKeyRevoked` — published by `revokeApiKey` in whichever process ran it, so once the
 *   pub/sub seam spans processes (cluster mode) revocations reach every API process the same way.
 * - A connection tracked just after its key's revocation was heard (a socket that
 *   authenticated while the revocation committed) is ended at once.
 * - `onRevoked` (given at construction) hears every revocation too: the key cache uses it to
 *   forget the key everywhere, not only in the process that revoked it.
 */
import { ALL, type ApiKeyRevokedMessage, type PubSub } from '../../pubsub/pubsub.js';
import type { AuthContext } from '../../tenancy/scope.js';

export type EndReason = 'revoked' | 'expired';

interface Entry {
  /** ms since the epoch; Infinity: never expires. */
  expiresAt: number;
  end: (reason: EndReason) => void;
}

/** Revocations remembered for connections that authenticated while one was committing. */
const RECENT_REVOCATION_MS = 60_000;
/** setTimeout's maximum delay; a later expiry re-arms when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class LiveConnections {
  private readonly byKey = new Map<string, Set<Entry>>();
  private readonly recentlyRevoked = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private readonly revocations: AsyncIterableIterator<ApiKeyRevokedMessage>;

  constructor(
    pubsub: PubSub,
    private readonly onRevoked: (apiKeyId: string) => void = () => undefined,
  ) {
    // Subscribed now (the listener is attached when subscribe returns), read in the background.
    const revocations = pubsub.subscribe('apiKeyRevoked', ALL);
    this.revocations = revocations;
    void (async () => {
      for await (const msg of revocations) this.revoked(msg.apiKeyId);
    })();
  }

  /** Live connections of one key in this process. */
  count(apiKeyId: string): number {
    return this.byKey.get(apiKeyId)?.size ?? 0;
  }

  track(auth: AuthContext, end: (reason: EndReason) => void): () => void {
    const id = auth.apiKeyId;
    if (!id) return () => undefined;
    let ended = false;
    const entry: Entry = {
      expiresAt: auth.expiresAt ? auth.expiresAt.getTime() : Infinity,
      end: (reason) => {
        if (ended) return;
        ended = true;
        untrack();
        end(reason);
      },
    };
    const untrack = () => {
      const set = this.byKey.get(id);
      if (!set) return;
      set.delete(entry);
      if (!set.size) this.byKey.delete(id);
    };
    if (this.wasRevoked(id)) {
      queueMicrotask(() => entry.end('revoked'));
      return () => (ended = true);
    }
    let set = this.byKey.get(id);
    if (!set) this.byKey.set(id, (set = new Set()));
    set.add(entry);
    if (entry.expiresAt <= Date.now()) queueMicrotask(() => entry.end('expired'));
    else if (entry.expiresAt < this.timerAt) this.arm(entry.expiresAt);
    return () => {
      ended = true;
      untrack();
    };
  }

  /** Ends every live connection of a key (revocation heard); the number ended. */
  private revoked(apiKeyId: string): number {
    const now = Date.now();
    this.recentlyRevoked.set(apiKeyId, now);
    for (const [id, at] of this.recentlyRevoked) if (now - at > RECENT_REVOCATION_MS) this.recentlyRevoked.delete(id);
    this.onRevoked(apiKeyId);
    const set = this.byKey.get(apiKeyId);
    if (!set) return 0;
    const entries = [...set];
    for (const e of entries) e.end('revoked');
    return entries.length;
  }

  private wasRevoked(apiKeyId: string): boolean {
    const at = this.recentlyRevoked.get(apiKeyId);
    return at !== undefined && Date.now() - at <= RECENT_REVOCATION_MS;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())));
    this.timer.unref();
  }

  /** Ends what has expired, then re-arms for the next expiry. */
  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const set of [...this.byKey.values()]) {
      for (const e of [...set]) {
        if (e.expiresAt <= now) e.end('expired');
        else if (e.expiresAt < next) next = e.expiresAt;
      }
    }
    if (next < Infinity) this.arm(next);
  }

  /** Stops listening and disarms the timer (shutdown; the sockets are closed by the server). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    void this.revocations.return?.();
  }
}
