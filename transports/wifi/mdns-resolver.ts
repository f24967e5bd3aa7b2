// LAN discovery over mDNS / DNS-SD (bonjour-service): announces `_nearmesh._tcp` on our TCP port and
// reports the other agents it hears as Wi-Fi candidates. Multicast trouble is a warning, never a crash.
import { EventEmitter } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import Bonjour from 'bonjour-service';
import { formatHostPort } from '../../agent/config/address.js';
import { NearmeshError } from '../../agent/errors.js';
import { TypedEmitter } from '../../agent/events.js';
import { isPeerId } from '../../agent/identity/peer-id.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../resolver.js';

export const MDNS_SOURCE = 'mdns';
export const MDNS_SERVICE_TYPE = 'nearmesh';
export const MDNS_TXT_VERSION = '1';
/** How long start() waits for the multicast socket to bind before carrying on regardless. */
const BIND_WAIT_MS = 5000;
/** How long stop() waits for the goodbye packet to leave. */
const GOODBYE_WAIT_MS = 1000;
/** The same warning (say, a garbage packet from one host) is reported at most once per this window. */
const WARNING_REPEAT_MS = 60_000;
/** DNS labels are at most 63 bytes; the instance name is one label. */
const DNS_LABEL_MAX_BYTES = 63;
const SHORT_ID_CHARS = 8;

export interface MdnsResolverOptions {
  /** Our peer id: announced in TXT `id`, and how we recognise (and skip) our own announcement. */
  peerId: string;
  /** Agent name; the instance name is "<name>-<first 8 hex of peerId>", unique on the LAN. */
  name: string;
  /** The TCP port our Wi-Fi transport listens on. */
  port: number;
  /**
   * Host name announced as the SRV target (the A/AAAA records name it). Default
   * "nearmesh-<peerId>.local": never os.hostname(), which cloned SD images and namespaces share.
   */
  host?: string;
  /**
   * IPv4 address of the one interface to use for multicast (group membership and outgoing
   * packets). Default: every interface. The socket itself always binds 0.0.0.0:5353, because
   * on Linux a socket bound to a unicast address never receives multicast.
   */
  interfaceAddress?: string;
}

/** A TXT record we cannot use (wrong id, unknown version, no address); it is ignored. */
export class MalformedServiceError extends NearmeshError {
  constructor(
    readonly instance: string,
    reason: string,
  ) {
    super('mdns-malformed', `ignoring mDNS service ${JSON.stringify(instance)}: ${reason}`);
  }
}

/** The parts of a bonjour-service Service that we read; all untrusted network input. */
export interface AnnouncedService {
  name?: unknown;
  fqdn?: unknown;
  port?: unknown;
  txt?: unknown;
  addresses?: unknown;
  referer?: { address?: unknown } | undefined;
}

export type ServiceReading =
  | { kind: 'self' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'peer'; candidates: PeerCandidate[] };

/**
 * Turns one announced service into candidates, one per usable address, best first: the address the
 * packet came from (reachable on the link we heard it on), other IPv4s, then global IPv6s.
 * Link-local IPv6 is skipped: without a zone index it cannot be dialled.
 */
export function readAnnouncedService(service: AnnouncedService, selfPeerId: string): ServiceReading {
  const txt =
    typeof service.txt === 'object' && service.txt !== null ? (service.txt as Record<string, unknown>) : {};
  const { id, v } = txt;
  if (id === selfPeerId) return { kind: 'self' };
  if (typeof id !== 'string' || !isPeerId(id))
    return { kind: 'malformed', reason: 'TXT id is not a peer id' };
  if (v !== MDNS_TXT_VERSION) return { kind: 'malformed', reason: `unsupported TXT version ${String(v)}` };
  const port = service.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return { kind: 'malformed', reason: `bad port ${String(port)}` };
  }
  const announced = Array.isArray(service.addresses)
    ? service.addresses.filter((a) => typeof a === 'string')
    : [];
  const referer = service.referer?.address;
  const ipv4 = [...(typeof referer === 'string' ? [referer] : []), ...announced].filter((a) => isIPv4(a));
  const ipv6 = announced.filter((a) => isIPv6(a) && !/^fe[89ab]/i.test(a));
  const addresses = [...new Set(ipv4.length > 0 ? ipv4 : ipv6)];
  if (addresses.length === 0) return { kind: 'malformed', reason: 'no usable address' };
  const instance = typeof service.name === 'string' ? service.name : '';
  const suffix = `-${id.slice(0, SHORT_ID_CHARS)}`;
  const name = instance.endsWith(suffix) ? instance.slice(0, -suffix.length) : instance;
  return {
    kind: 'peer',
    candidates: addresses.map((address) => ({
      medium: 'wifi',
      address: formatHostPort({ host: address, port }),
      peerId: id,
      ...(name !== '' && { name }),
      source: MDNS_SOURCE,
    })),
  };
}

/** "<name>-<short id>", dots replaced (they would split the label) and cut to fit one DNS label. */
export function instanceNameFor(name: string, peerId: string): string {
  const suffix = `-${peerId.slice(0, SHORT_ID_CHARS)}`;
  let base = name.replaceAll('.', '-').trim() || 'nearmesh';
  while (Buffer.byteLength(base + suffix) > DNS_LABEL_MAX_BYTES) base = [...base].slice(0, -1).join('');
  return base + suffix;
}

/** multicast-dns options, which bonjour-service passes through untyped. */
interface MulticastDnsOptions {
  bind?: string;
  interface?: string;
}

type BonjourService = Bonjour.Service;
type BonjourBrowser = Bonjour.Browser;

export class MdnsResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name = MDNS_SOURCE;
  readonly #options: Required<Omit<MdnsResolverOptions, 'interfaceAddress'>> & { interfaceAddress?: string };
  readonly #instanceName: string;
  /** Candidates reported per service instance (fqdn), to report 'lost' and address changes. */
  readonly #known = new Map<string, PeerCandidate[]>();
  readonly #warnedInstances = new Set<string>();
  readonly #lastWarningMs = new Map<string, number>();
  #ignoredCount = 0;
  #bonjour: Bonjour | undefined;
  #browser: BonjourBrowser | undefined;

  constructor(options: MdnsResolverOptions) {
    super();
    if (!isPeerId(options.peerId))
      throw new RangeError(`peerId must be 16 lowercase hex, got ${options.peerId}`);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new RangeError(`port must be in 1..65535, got ${options.port}`);
    }
    if (options.interfaceAddress !== undefined && !isIPv4(options.interfaceAddress)) {
      throw new RangeError(`interfaceAddress must be an IPv4 address, got ${options.interfaceAddress}`);
    }
    this.#options = { ...options, host: options.host ?? `nearmesh-${options.peerId}.local` };
    this.#instanceName = instanceNameFor(options.name, options.peerId);
  }

  /** The DNS-SD instance name we announce. */
  get instanceName(): string {
    return this.#instanceName;
  }

  /** Announcements ignored as malformed so far (each instance is warned about once). */
  get ignoredCount(): number {
    return this.#ignoredCount;
  }

  async start(): Promise<void> {
    if (this.#bonjour !== undefined) return;
    const mdnsOptions: MulticastDnsOptions = {
      bind: '0.0.0.0',
      ...(this.#options.interfaceAddress !== undefined && { interface: this.#options.interfaceAddress }),
    };
    // bonjour-service types its first argument as a ServiceConfig, but hands it to multicast-dns.
    const bonjour = new Bonjour(
      mdnsOptions as unknown as ConstructorParameters<typeof Bonjour>[0],
      (error: unknown) => this.#warn(asError(error)),
    );
    this.#bonjour = bonjour;
    const mdns = multicastDnsOf(bonjour);
    // Without these listeners multicast-dns's 'error' (EADDRINUSE, EACCES on bind) would throw.
    mdns.on('error', (error: Error) => this.#warn(error));
    mdns.on('warning', (error: Error) => this.#warn(error));
    await whenBound(mdns);
    if (this.#bonjour !== bonjour) return; // stopped while binding

    bonjour.publish({
      name: this.#instanceName,
      type: MDNS_SERVICE_TYPE,
      protocol: 'tcp',
      port: this.#options.port,
      host: this.#options.host,
      txt: { id: this.#options.peerId, v: MDNS_TXT_VERSION },
      // The name carries our peer id, so a clash means our own stale record: announce at once rather
      // than probe for a second and, on a clash, silently give up (bonjour-service only logs it).
      probe: false,
    });
    const browser = bonjour.find({ type: MDNS_SERVICE_TYPE, protocol: 'tcp' });
    browser.on('up', (service) => this.#update(service));
    browser.on('srv-update', (service) => this.#update(service));
    browser.on('txt-update', (service) => this.#update(service));
    browser.on('down', (service) => this.#remove(service.fqdn));
    this.#browser = browser;
  }

  /** Sends goodbyes (TTL 0) for our announcement, then closes the multicast socket. */
  async stop(): Promise<void> {
    const bonjour = this.#bonjour;
    if (bonjour === undefined) return;
    this.#bonjour = undefined;
    this.#browser?.stop();
    this.#browser = undefined;
    await withTimeout(new Promise<void>((resolve) => bonjour.unpublishAll(() => resolve())), GOODBYE_WAIT_MS);
    await withTimeout(new Promise<void>((resolve) => bonjour.destroy(() => resolve())), GOODBYE_WAIT_MS);
    this.#known.clear();
  }

  #update(service: BonjourService): void {
    const instance = String(service.fqdn);
    const reading = readAnnouncedService(service, this.#options.peerId);
    if (reading.kind === 'malformed') {
      this.#ignoredCount++;
      // A misconfigured device re-announces forever: say so once per instance, then count quietly.
      if (!this.#warnedInstances.has(instance) && this.#warnedInstances.size < 1024) {
        this.#warnedInstances.add(instance);
        this.emit('warning', new MalformedServiceError(instance, reading.reason));
      }
    }
    const next = reading.kind === 'peer' ? reading.candidates : [];
    const previous = this.#known.get(instance) ?? [];
    if (next.length > 0) this.#known.set(instance, next);
    else this.#known.delete(instance);
    for (const candidate of previous) {
      if (!next.some((c) => isSameCandidate(c, candidate))) this.emit('lost', candidate);
    }
    for (const candidate of next) {
      if (!previous.some((c) => isSameCandidate(c, candidate))) this.emit('found', candidate);
    }
  }

  #remove(instance: string): void {
    const previous = this.#known.get(instance) ?? [];
    this.#known.delete(instance);
    for (const candidate of previous) this.emit('lost', candidate);
  }

  #warn(error: Error): void {
    const nowMs = Date.now();
    const lastMs = this.#lastWarningMs.get(error.message);
    if (lastMs !== undefined && nowMs - lastMs < WARNING_REPEAT_MS) return;
    if (this.#lastWarningMs.size > 256) this.#lastWarningMs.clear();
    this.#lastWarningMs.set(error.message, nowMs);
    this.emit('warning', error);
  }
}

function isSameCandidate(a: PeerCandidate, b: PeerCandidate): boolean {
  return a.address === b.address && a.peerId === b.peerId && a.name === b.name;
}

/** bonjour-service keeps its multicast-dns instance private; we need it for 'error'/'warning'/'ready'. */
function multicastDnsOf(bonjour: Bonjour): EventEmitter {
  const mdns = (bonjour as unknown as { server?: { mdns?: unknown } }).server?.mdns;
  if (!(mdns instanceof EventEmitter)) throw new Error('bonjour-service internals changed: no server.mdns');
  return mdns;
}

function whenBound(mdns: EventEmitter): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      mdns.once('ready', () => resolve());
      // A failed bind is already a warning; discovery is optional, so start() still succeeds.
      mdns.once('error', () => resolve());
    }),
    BIND_WAIT_MS,
  );
}

function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
