/**
 * The outbound-request guard: refuses requests to private, loopback, link-local, metadata and
 * other non-public addresses (server-side request forgery), unless the address or host name is
 * in the allow-list (`SLUICE_OUTBOUND_ALLOW`).
 *
 * Contract:
 * - Two checks, one decision function (`blockedReason`):
 *   1. `check(url)` (http/client.ts's `guardUrl`, run before every attempt and every redirect
 *      hop): IP literals are judged as they are, host names are resolved (every address) and
 *      refused when ANY address is blocked. It gives a fast, clear error.
 *   2. `dispatcher` (an undici Agent given to fetch): the same decision when the socket is
 *      opened. IP literals are judged by the connector; host names through the socket's
 *      `lookup`, which answers only with the addresses it has checked, so the connection goes
 *      to a checked address. A name that resolves to a public address for check 1 and to a
 *      private one when connecting (DNS rebinding) is refused here.
 * - The URL parser (WHATWG) already turns every IPv4 spelling (`2130706433`, `0x7f.1`,
 *   `0177.0.0.1`, `127.1`) into dotted decimal; IPv6 literals are judged on their bits, and
 *   addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
 *   `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged on the embedded address.
 * - Blocked: everything ipaddr.js does not classify as public unicast (unspecified, loopback,
 *   private, carrier-grade NAT, link-local, unique local, multicast, broadcast, reserved,
 *   documentation, benchmarking, Teredo, ...), IPv6 outside 2000::/3, the cloud metadata
 *   addresses (169.254.169.254, 100.100.100.200, fd00:ec2::254) and host names
 *   (`metadata.google.internal`, `metadata`, `instance-data`, ...), and `localhost` /
 *   `*.localhost` by name.
 * - The allow-list (IPs, CIDRs, host names, `*.domain` wildcards) wins over every rule: an
 *   allowed host name is not checked at all, an allowed address passes. IPv4-mapped IPv6
 *   addresses match IPv4 entries.
 * - A DNS failure is not a refusal: the check lets it through and fetch reports the network
 *   error as usual.
 * - Refusals are `OutboundRefusedError` (code `ERR_OUTBOUND_REFUSED`) naming the host and the
 *   reason; http/client.ts turns them into non-retryable DriverErrors with the redacted URL.
 *
 * Range classification uses ipaddr.js rather than hand-written bit masks: the special-purpose
 * registries change (new reserved blocks appear) and the embedded-address forms are easy to get
 * wrong.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';
import os from 'node:os';
import type { DatabaseTarget, OutboundGuardSettings, ResolvedAddress } from '../engine/drivers/kit/outbound.js';

export type { DatabaseTarget, ResolvedAddress };

const OUTBOUND_ALLOW_VAR = 'SLUICE_OUTBOUND_ALLOW';

/** Resolves a host name to all its addresses (like `dns.lookup(name, { all: true })`). */
export type LookupAll = (hostname: string) => Promise<ResolvedAddress[]>;

const systemLookup: LookupAll = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export class OutboundRefusedError extends Error {
  readonly code = 'ERR_OUTBOUND_REFUSED';
  /** `allowable`: whether the allow-list could lift the refusal (the message then says how). */
  constructor(
    readonly host: string,
    readonly reason: string,
    allowable = true,
  ) {
    super(allowable ? `${reason}; allow it with ${OUTBOUND_ALLOW_VAR}` : reason);
    this.name = 'OutboundRefusedError';
  }
}

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

export type AllowEntry =
  | { kind: 'cidr'; text: string; range: [Addr, number] }
  | { kind: 'host'; text: string; host: string }
  | { kind: 'suffix'; text: string; suffix: string };

const HOST_RE = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/;

/** Splits a comma- or whitespace-separated list (`SLUICE_OUTBOUND_ALLOW`, `SLUICE_CORS_ORIGINS`). */
export function splitList(spec: string): string[] {
  return spec.split(/[\s,]+/).filter((s) => s !== '');
}

/**
 * Parses an allow-list: comma- or whitespace-separated IPs (`127.0.0.1`, `::1`), CIDRs
 * (`10.0.0.0/8`, `fd00::/8`), host names (`api.internal`) and wildcards (`*.internal`, any
 * subdomain). Throws an Error naming the first bad entry.
 */
export function parseAllowList(spec: string | readonly string[] | undefined): AllowEntry[] {
  const items = (typeof spec === 'string' ? splitList(spec) : (spec ?? [])).map((s) => s.trim()).filter((s) => s !== '');
  return items.map((text): AllowEntry => {
    const plain = text.replace(/^\[([^\]]*)\](\/\d+)?$/, '$1$2');
    if (plain.includes('/')) {
      const [ip, bits] = plain.split('/');
      if (ip !== undefined && bits !== undefined && /^\d{1,3}$/.test(bits) && net.isIP(ip) !== 0) {
        const addr = ipaddr.parse(ip);
        const max = addr.kind() === 'ipv4' ? 32 : 128;
        if (Number(bits) <= max) return { kind: 'cidr', text, range: [addr, Number(bits)] };
      }
      throw new Error(`${JSON.stringify(text)} is not a valid CIDR (e.g. 10.0.0.0/8 or fd00::/8)`);
    }
    if (net.isIP(plain) !== 0) {
      const addr = ipaddr.parse(plain);
      return { kind: 'cidr', text, range: [addr, addr.kind() === 'ipv4' ? 32 : 128] };
    }
    const host = normaliseHost(plain);
    if (host.startsWith('*.') && HOST_RE.test(host.slice(2))) return { kind: 'suffix', text, suffix: host.slice(1) };
    if (HOST_RE.test(host) && !/^[\d.]+$/.test(host)) return { kind: 'host', text, host };
    throw new Error(`${JSON.stringify(text)} is not an IP address, CIDR or host name`);
  });
}

/** Lower case, no brackets around IPv6, no trailing dot. */
function normaliseHost(host: string): string {
  return host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.+$/, '');
}

const METADATA_HOSTS = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

const METADATA_ADDRESSES = new Set(['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23']);

const V4_REASONS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address',
  private: 'a private address',
};

const V6_REASONS: Record<string, string> = {
  unspecified: 'an unspecified address',
  linkLocal: 'a link-local address',
  multicast: 'a multicast address',
  loopback: 'a loopback address',
  uniqueLocal: 'a unique local (private) address',
  deprecatedSiteLocal: 'a site-local (private) address',
  teredo: 'a Teredo tunnel address',
};

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

function v4FromBytes(bytes: number[]): ipaddr.IPv4 {
  return new ipaddr.IPv4(bytes);
}

/**
 * Why an address must not be contacted (e.g. `a private address`), or null for a public one or
 * one `allowed` (the allow-list; by default none) accepts.
 */
export function blockedReason(address: string, allowed: (addr: Addr) => boolean = () => false): string | null {
  let addr: Addr;
  try {
    addr = ipaddr.parse(normaliseHost(address));
  } catch {
    return 'not a valid IP address';
  }
  return allowed(addr) ? null : reasonFor(addr);
}

function reasonFor(addr: Addr): string | null {
  const text = addr.toString();
  if (METADATA_ADDRESSES.has(text)) return 'a cloud metadata address';
  if (addr.kind() === 'ipv4') {
    const range = addr.range();
    if (range === 'unicast') return null;
    return V4_REASONS[range] ?? 'a reserved address';
  }
  const v6 = addr as ipaddr.IPv6;
  const bytes = v6.toByteArray();
  const range = v6.range();
  // Addresses carrying an IPv4 address: judged on the IPv4 address.
  const embedded = (kind: string, v4: ipaddr.IPv4): string | null => {
    const inner = reasonFor(v4);
    return inner === null ? null : `${inner} (${kind} ${v4.toString()})`;
  };
  if (range === 'ipv4Mapped') return embedded('IPv4-mapped', v6.toIPv4Address());
  if (range === 'rfc6145') return `a reserved address (IPv4-translated ${v4FromBytes(bytes.slice(12)).toString()})`;
  if (bytes.slice(0, 12).every((b) => b === 0)) {
    // ::a.b.c.d (IPv4-compatible, deprecated); :: and ::1 are handled by their ranges.
    if (range === 'unspecified' || range === 'loopback') return V6_REASONS[range]!;
    return `${embedded('IPv4-compatible', v4FromBytes(bytes.slice(12))) ?? 'a reserved address'}`;
  }
  if (v6.match(NAT64_WELL_KNOWN)) return embedded('NAT64', v4FromBytes(bytes.slice(12)));
  if (range === '6to4') return embedded('6to4', v4FromBytes(bytes.slice(2, 6)));
  if (range === 'unicast' && v6.match(GLOBAL_UNICAST_V6)) return null;
  return V6_REASONS[range] ?? 'a reserved address';
}

/** `localhost` or a subdomain of it (a lower-case host name). */
export function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/** Why a host name is refused by name, or null. */
function blockedName(host: string): string | null {
  if (isLoopbackName(host)) return 'a loopback host name';
  if (METADATA_HOSTS.has(host)) return 'a cloud metadata host name';
  return null;
}

export interface OutboundGuardOptions {
  /** Allow-list: a `SLUICE_OUTBOUND_ALLOW` string or its entries (see parseAllowList). */
  allow?: string | readonly string[];
  /** DNS resolution (tests inject fake answers). Default: `dns.lookup(name, { all: true })`. */
  lookup?: LookupAll;
  /**
   * Database servers no connector may use whatever the allow-list says: Sluice's own state
   * database. A target is the same when its database name and port are equal and one of its
   * addresses is one of the protected host's (every address of this machine counts as one
   * when the protected host is local: loopback, a Unix socket, or an interface address).
   */
  protectedDatabases?: readonly DatabaseTarget[];
}

export interface OutboundGuard {
  /** Throws OutboundRefusedError when the URL's host (or any address it resolves to) is refused. */
  check(url: URL): Promise<void>;
  /** A fetch dispatcher that applies the same decision when each connection is opened. */
  readonly dispatcher: Agent;
  /**
   * A database connection's check: the host judged like a URL's (every address), and the
   * protected databases refused. Resolves to the checked addresses to connect to; a DNS
   * failure rejects with the resolver's error. Unix socket paths are refused.
   */
  checkDatabase(target: DatabaseTarget): Promise<ResolvedAddress[]>;
  /** The options as plain data, to install the same guard in a worker thread. */
  readonly settings: OutboundGuardSettings;
  close(): Promise<void>;
}

export function createOutboundGuard(options: OutboundGuardOptions = {}): OutboundGuard {
  const entries = parseAllowList(options.allow);
  const cidrs = entries.flatMap((e) => (e.kind === 'cidr' ? [e.range] : []));
  const hosts = new Set(entries.flatMap((e) => (e.kind === 'host' ? [e.host] : [])));
  const suffixes = entries.flatMap((e) => (e.kind === 'suffix' ? [e.suffix] : []));
  const lookup = options.lookup ?? systemLookup;

  const hostAllowed = (host: string) => hosts.has(host) || suffixes.some((s) => host.endsWith(s));

  const addressAllowed = (addr: Addr): boolean => {
    const forms: Addr[] = [addr];
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) forms.push((addr as ipaddr.IPv6).toIPv4Address());
    return forms.some((a) => cidrs.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits)));
  };

  /** The decision for one address of a host: the refusal reason, or null to allow. */
  const addressDecision = (address: string): string | null => blockedReason(address, addressAllowed);

  /** Null when the host needs DNS; otherwise the verdict for a literal or a refused name. */
  const judgeLiteral = (host: string): OutboundRefusedError | 'allowed' | null => {
    if (hostAllowed(host)) return 'allowed';
    if (net.isIP(host) !== 0) {
      const reason = addressDecision(host);
      return reason === null ? 'allowed' : new OutboundRefusedError(host, `${host} is ${reason}`);
    }
    const byName = blockedName(host);
    if (byName !== null) return new OutboundRefusedError(host, `${host} is ${byName}`);
    return null;
  };

  const judgeAddresses = (host: string, addresses: readonly ResolvedAddress[]): OutboundRefusedError | null => {
    for (const a of addresses) {
      const reason = addressDecision(a.address);
      if (reason !== null) return new OutboundRefusedError(host, `${host} resolves to ${a.address}, ${reason}`);
    }
    return null;
  };

  const check = async (url: URL): Promise<void> => {
    const host = normaliseHost(url.hostname);
    const verdict = judgeLiteral(host);
    if (verdict === 'allowed') return;
    if (verdict !== null) throw verdict;
    let addresses: ResolvedAddress[];
    try {
      addresses = await lookup(host);
    } catch {
      return; // fetch reports the DNS failure; the connection is checked again anyway
    }
    const refused = judgeAddresses(host, addresses);
    if (refused) throw refused;
  };

  // Connect-time enforcement: the socket's lookup answers only with addresses it has checked.
  const connectLookup = (hostname: string, opts: dns.LookupOptions, callback: LookupCallback): void => {
    const host = normaliseHost(hostname);
    const answer = (addresses: ResolvedAddress[]) => answerLookup(hostname, addresses, opts, callback);
    const verdict = judgeLiteral(host);
    if (verdict instanceof OutboundRefusedError) return callback(verdict, opts.all ? [] : '', undefined);
    lookup(host).then(
      (addresses) => {
        if (verdict !== 'allowed') {
          const refused = judgeAddresses(host, addresses);
          if (refused) return callback(refused, opts.all ? [] : '', undefined);
        }
        answer(addresses);
      },
      (err: NodeJS.ErrnoException) => callback(err, opts.all ? [] : '', undefined),
    );
  };

  const base = buildConnector({ lookup: connectLookup as unknown as TlsConnectionOptions['lookup'] });
  const connector: buildConnector.connector = (opts, callback) => {
    // IP literals never reach `lookup`: judge them here (host names are judged by connectLookup).
    const host = normaliseHost(opts.hostname);
    const verdict = net.isIP(host) !== 0 ? judgeLiteral(host) : null;
    if (verdict instanceof OutboundRefusedError) {
      callback(verdict, null);
      return;
    }
    base(opts, callback);
  };
  const dispatcher = new Agent({ connect: connector });

  const protectedDatabases = (options.protectedDatabases ?? []).map((d) => ({ ...d }));

  const addressesOf = async (host: string): Promise<ResolvedAddress[]> => {
    const family = net.isIP(host);
    return family !== 0 ? [{ address: host, family }] : lookup(host);
  };

  const checkDatabase = async (target: DatabaseTarget): Promise<ResolvedAddress[]> => {
    if (target.host.startsWith('/')) {
      throw new OutboundRefusedError(target.host, `${target.host} is a Unix socket path; connectors connect over TCP only`, false);
    }
    const host = normaliseHost(target.host);
    const verdict = judgeLiteral(host);
    if (verdict instanceof OutboundRefusedError) throw verdict;
    const addresses = await addressesOf(host);
    if (verdict !== 'allowed') {
      const refused = judgeAddresses(host, addresses);
      if (refused) throw refused;
    }
    for (const p of protectedDatabases) {
      if (p.port !== target.port || p.database !== target.database) continue;
      if (await sameServer(p.host, host, addresses, addressesOf)) {
        throw new OutboundRefusedError(host, `${describeDatabase(target)} is Sluice's own state database, which no connector may use`, false);
      }
    }
    return addresses;
  };

  return {
    check,
    dispatcher,
    checkDatabase,
    settings: { allow: entries.map((e) => e.text), protectedDatabases },
    close: () => dispatcher.destroy().catch(() => undefined),
  };
}

function describeDatabase(t: DatabaseTarget): string {
  return `${net.isIPv6(t.host) ? `[${t.host}]` : t.host}:${t.port}/${t.database}`;
}

/** IPv4-mapped IPv6 as IPv4, canonical text. */
function canonical(address: string): string | null {
  try {
    return ipaddr.process(normaliseHost(address)).toString();
  } catch {
    return null;
  }
}

/** Loopback, unspecified, or an address of one of this machine's interfaces. */
function isThisMachine(address: string): boolean {
  const text = canonical(address);
  if (text === null) return false;
  const range = ipaddr.parse(text).range();
  if (range === 'loopback' || range === 'unspecified') return true;
  return Object.values(os.networkInterfaces()).some((list) => (list ?? []).some((i) => canonical(i.address) === text));
}

/** Whether a target host (with its checked addresses) is the protected host's server. */
async function sameServer(protectedHost: string, host: string, addresses: readonly ResolvedAddress[], addressesOf: (h: string) => Promise<ResolvedAddress[]>): Promise<boolean> {
  const p = normaliseHost(protectedHost);
  if (p === host) return true;
  let theirs: string[];
  if (p.startsWith('/')) theirs = ['127.0.0.1'];
  else {
    try {
      theirs = (await addressesOf(p)).map((a) => a.address);
    } catch {
      theirs = []; // unresolvable now: only the name comparison above applies
    }
  }
  const local = theirs.some(isThisMachine);
  const wanted = new Set(theirs.map(canonical));
  return addresses.some((a) => wanted.has(canonical(a.address)) || (local && isThisMachine(a.address)));
}

export type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * Answers a socket's `lookup` (as `dns.lookup` would) with already checked addresses only, so
 * a connection goes exactly where the guard looked. ENOTFOUND when none fits `opts.family`.
 */
export function answerLookup(hostname: string, addresses: readonly ResolvedAddress[], opts: dns.LookupOptions, callback: LookupCallback): void {
  const wanted = opts.family === 4 || opts.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
  if (wanted.length === 0) {
    const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = 'ENOTFOUND';
    return callback(err, opts.all ? [] : '', undefined);
  }
  if (opts.all) return callback(null, wanted.map((a) => ({ address: a.address, family: a.family })));
  return callback(null, wanted[0]!.address, wanted[0]!.family);
}
