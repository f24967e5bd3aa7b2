// LAN discovery over mDNS / DNS-SD (bonjour-service): announces `_nearmesh._tcp` on our TCP port under a
// random name that changes every hour, with our peer id sealed in a discovery hint only members open, and
// reports the other agents of our mesh it hears as Wi-Fi candidates. Multicast trouble is a warning, never a crash.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import Bonjour from 'bonjour-service';
import { NearmeshError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { formatHostPort } from '../../agent/core/host-port.js';
import { type HintLayout, isHintPeerId, openHint, sealHint } from '../discovery-hint.js';
import { OlderAgentError } from '../errors.js';
import { ADVERTISER_WARNING_INTERVAL_MS, OncePerInterval } from '../once-per-interval.js';
import {
  DISCOVERY_PROTOCOL_VERSION,
  type PeerCandidate,
  type Resolver,
  type ResolverEvents,
} from '../resolver.js';

export const MDNS_SOURCE = 'mdns';
export const MDNS_SERVICE_TYPE = 'nearmesh';
export const MDNS_TXT_VERSION = String(DISCOVERY_PROTOCOL_VERSION);
/** The hint in TXT `h`: room is not tight here, so a long nonce and the whole peer id. */
export const MDNS_HINT_LAYOUT: HintLayout = { nonceBytes: 16, idBytes: 8 };
/**
 * How long one instance name and hint are announced before new ones replace them: what an outsider on the LAN
 * can follow a device for (its IP and MAC addresses aside). Each change costs one goodbye and one announcement.
 */
export const MDNS_ROTATION_MS = 60 * 60_000;
/** "nearmesh-" and 4 random bytes as hex: the instance label and the host name, new at every rotation. */
const NAME_PREFIX = 'nearmesh-';
const NAME_RANDOM_BYTES = 4;
/** How long start() waits for the multicast socket to bind before carrying on regardless. */
const BIND_WAIT_MS = 5000;
/** How long stop() waits for the goodbye packet to leave. */
const GOODBYE_WAIT_MS = 1000;
/** The same warning (say, a garbage packet from one host) is reported at most once per this window. */
const WARNING_REPEAT_MS = 60_000;
/** Instances whose last warning (malformed, older agent) is remembered; beyond it warnings are dropped. */
const MAX_WARNED_INSTANCES = 1024;

export interface MdnsResolverOptions {
  /** Our peer id: sealed in TXT `h`, and how we recognise (and skip) our own announcements. */
  peerId: string;
  /** The accepted mesh keys, the current one first: ours is sealed under the current one, any opens theirs. */
  meshKeys: () => readonly Uint8Array[];
  /** The TCP port our Wi-Fi transport listens on. */
  port: number;
  /**
   * IPv4 address of the one interface to use for multicast (group membership and outgoing
   * packets). Default: every interface. The socket itself always binds 0.0.0.0:5353, because
   * on Linux a socket bound to a unicast address never receives multicast.
   */
  interfaceAddress?: string;
  /** How often the name and hint change; default MDNS_ROTATION_MS. */
  rotationMs?: number;
  /**
   * The discriminator of this agent's open invitation (0-99), shown as TXT `j` so a joining device finds
   * the inviter its code is for; undefined when none is open. Call rotate() when it changes.
   */
  invitation?: () => number | undefined;
}

/** Instances showing an invitation whose addresses are remembered (more is a flood, not a LAN). */
const MAX_INVITERS = 64;

/** A TXT record we cannot use (no hint, bad port, no address); it is ignored. */
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
  /** A hint none of our keys opens: an agent of another mesh. */
  | { kind: 'foreign' }
  /** An agent of an older protocol version, at this address. */
  | { kind: 'older'; version: number; address: string }
  | { kind: 'malformed'; reason: string }
  | { kind: 'peer'; candidates: PeerCandidate[] };

/** A fresh "nearmesh-<8 random hex>", the instance label and (with ".local") the host name. */
export function randomInstanceName(): string {
  return NAME_PREFIX + randomBytes(NAME_RANDOM_BYTES).toString('hex');
}

/**
 * Turns one announced service into candidates, one per usable address, best first: the address the
 * packet came from (reachable on the link we heard it on), other IPv4s, then global IPv6s.
 * Link-local IPv6 is skipped: without a zone index it cannot be dialled.
 */
export function readAnnouncedService(
  service: AnnouncedService,
  selfPeerId: string,
  meshKeys: () => readonly Uint8Array[],
): ServiceReading {
  const txt =
    typeof service.txt === 'object' && service.txt !== null ? (service.txt as Record<string, unknown>) : {};
  const { h, v } = txt;
  const addresses = usableAddresses(service);
  const version = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : undefined;
  if (version !== undefined && version < DISCOVERY_PROTOCOL_VERSION) {
    return { kind: 'older', version, address: addresses[0] ?? 'an unknown address' };
  }
  if (v !== MDNS_TXT_VERSION) return { kind: 'malformed', reason: `unsupported TXT version ${String(v)}` };
  if (typeof h !== 'string' || !/^([0-9a-f]{2})+$/.test(h)) {
    return { kind: 'malformed', reason: 'TXT h is not a hint' };
  }
  const opened = openHint(meshKeys, Buffer.from(h, 'hex'), MDNS_HINT_LAYOUT);
  if (opened === undefined) return { kind: 'foreign' };
  if (opened.peerId === selfPeerId) return { kind: 'self' };
  const port = service.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return { kind: 'malformed', reason: `bad port ${String(port)}` };
  }
  if (addresses.length === 0) return { kind: 'malformed', reason: 'no usable address' };
  return {
    kind: 'peer',
    candidates: addresses.map((address) => ({
      medium: 'wifi',
      address: formatHostPort({ host: address, port }),
      peerId: opened.peerId,
      source: MDNS_SOURCE,
    })),
  };
}

/** What we announce: every record names only the random instance, and TXT `h` opens to our id for members. */
export interface Announcement {
  name: string;
  type: string;
  protocol: 'tcp';
  port: number;
  host: string;
  txt: { v: string; h: string; j?: string };
}

/** The announcement under this instance name, with a freshly sealed hint (or one of the given nonce). */
export function announcementFor(
  instanceName: string,
  options: Pick<MdnsResolverOptions, 'peerId' | 'meshKeys' | 'port' | 'invitation'>,
  nonce?: Uint8Array,
): Announcement {
  const hint = sealHint(options.meshKeys, options.peerId, MDNS_HINT_LAYOUT, nonce);
  const invitation = options.invitation?.();
  return {
    name: instanceName,
    type: MDNS_SERVICE_TYPE,
    protocol: 'tcp',
    port: options.port,
    // Never os.hostname(): it names the device (and cloned SD images and namespaces share it).
    host: `${instanceName}.local`,
    txt: {
      v: MDNS_TXT_VERSION,
      h: Buffer.from(hint).toString('hex'),
      ...(invitation !== undefined && { j: String(invitation) }),
    },
  };
}

/** The TXT `j` of an announced service (an open invitation's discriminator) with its dialable addresses. */
export function readInvitation(
  service: AnnouncedService,
): { discriminator: number; addresses: string[] } | undefined {
  const txt =
    typeof service.txt === 'object' && service.txt !== null ? (service.txt as Record<string, unknown>) : {};
  const { j } = txt;
  const port = service.port;
  if (typeof j !== 'string' || !/^[0-9]{1,2}$/.test(j)) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const addresses = usableAddresses(service).map((host) => formatHostPort({ host, port }));
  return addresses.length === 0 ? undefined : { discriminator: Number(j), addresses };
}

function usableAddresses(service: AnnouncedService): string[] {
  const announced = Array.isArray(service.addresses)
    ? service.addresses.filter((a) => typeof a === 'string')
    : [];
  const referer = service.referer?.address;
  const ipv4 = [...(typeof referer === 'string' ? [referer] : []), ...announced].filter((a) => isIPv4(a));
  const ipv6 = announced.filter((a) => isIPv6(a) && !/^fe[89ab]/i.test(a));
  return [...new Set(ipv4.length > 0 ? ipv4 : ipv6)];
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
  readonly #options: MdnsResolverOptions;
  /** Candidates reported per service instance (fqdn), to report 'lost' and address changes. */
  readonly #known = new Map<string, PeerCandidate[]>();
  /** Instances showing an open invitation (TXT `j`), whoever's mesh they belong to. */
  readonly #inviters = new Map<string, { discriminator: number; addresses: string[] }>();
  readonly #warnedInstances = new OncePerInterval(ADVERTISER_WARNING_INTERVAL_MS, MAX_WARNED_INSTANCES);
  readonly #lastWarningMs = new Map<string, number>();
  #ignoredCount = 0;
  #instanceName = randomInstanceName();
  #bonjour: Bonjour | undefined;
  #browser: BonjourBrowser | undefined;
  #service: BonjourService | undefined;
  #rotationTimer: NodeJS.Timeout | undefined;

  constructor(options: MdnsResolverOptions) {
    super();
    if (!isHintPeerId(options.peerId))
      throw new RangeError(`peerId must be 16 lowercase hex, got ${options.peerId}`);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new RangeError(`port must be in 1..65535, got ${options.port}`);
    }
    if (options.interfaceAddress !== undefined && !isIPv4(options.interfaceAddress)) {
      throw new RangeError(`interfaceAddress must be an IPv4 address, got ${options.interfaceAddress}`);
    }
    this.#options = options;
  }

  /** The DNS-SD instance name we announce now (it changes at every rotation). */
  get instanceName(): string {
    return this.#instanceName;
  }

  /**
   * Announcements ignored so far: hints none of our keys opens (other meshes, quietly), older agents and
   * malformed records (each instance warned about once an hour).
   */
  get ignoredCount(): number {
    return this.#ignoredCount;
  }

  /** Where agents showing an invitation with `discriminator` listen ("host:port"), as last announced. */
  inviterAddresses(discriminator: number): string[] {
    return [...this.#inviters.values()]
      .filter((inviter) => inviter.discriminator === discriminator)
      .flatMap((inviter) => inviter.addresses);
  }

  /** Asks the LAN again who is there (a joining device looking for its inviter). */
  query(): void {
    this.#browser?.update();
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

    this.#service = this.#publish(bonjour);
    this.#rotationTimer = setInterval(() => {
      // A rejection here would be unhandled, and end the process.
      this.rotate().catch((error: unknown) => this.#warn(asError(error)));
    }, this.#options.rotationMs ?? MDNS_ROTATION_MS);
    this.#rotationTimer.unref();
    const browser = bonjour.find({ type: MDNS_SERVICE_TYPE, protocol: 'tcp' });
    browser.on('up', (service) => this.#update(service));
    browser.on('srv-update', (service) => this.#update(service));
    browser.on('txt-update', (service) => this.#update(service));
    browser.on('down', (service) => this.#remove(service.fqdn));
    this.#browser = browser;
  }

  /**
   * Announces a fresh instance name, host name and hint (sealed under the current mesh key), then says goodbye
   * for the old ones. Runs every rotationMs by itself; call it when the mesh keys change. Links are not
   * touched: peers lose the old announcement and find the same address again under the new one.
   */
  async rotate(): Promise<void> {
    const bonjour = this.#bonjour;
    const old = this.#service;
    if (bonjour === undefined) return;
    this.#instanceName = randomInstanceName();
    this.#service = this.#publish(bonjour);
    if (old !== undefined) {
      await withTimeout(new Promise<void>((resolve) => old.stop(() => resolve())), GOODBYE_WAIT_MS);
    }
  }

  /** Sends goodbyes (TTL 0) for our announcement, then closes the multicast socket. */
  async stop(): Promise<void> {
    const bonjour = this.#bonjour;
    if (bonjour === undefined) return;
    this.#bonjour = undefined;
    this.#service = undefined;
    clearInterval(this.#rotationTimer);
    this.#browser?.stop();
    this.#browser = undefined;
    await withTimeout(new Promise<void>((resolve) => bonjour.unpublishAll(() => resolve())), GOODBYE_WAIT_MS);
    await withTimeout(new Promise<void>((resolve) => bonjour.destroy(() => resolve())), GOODBYE_WAIT_MS);
    this.#known.clear();
    this.#inviters.clear();
  }

  #publish(bonjour: Bonjour): BonjourService {
    return bonjour.publish({
      ...announcementFor(this.#instanceName, this.#options),
      // 32 random bits collide with another agent's name about once in 2^32 pairs (and the next rotation
      // ends it): announce at once rather than probe for a second and, on a clash, silently give up
      // (bonjour-service only logs it).
      probe: false,
    });
  }

  #update(service: BonjourService): void {
    const instance = String(service.fqdn);
    const invitation = readInvitation(service);
    if (invitation === undefined) this.#inviters.delete(instance);
    else if (this.#inviters.has(instance) || this.#inviters.size < MAX_INVITERS)
      this.#inviters.set(instance, invitation);
    const reading = readAnnouncedService(service, this.#options.peerId, this.#options.meshKeys);
    if (reading.kind === 'foreign' || reading.kind === 'older' || reading.kind === 'malformed') {
      this.#ignoredCount++;
    }
    // A device of another version or a misconfigured one re-announces forever: say so once an hour per
    // instance, as the BLE central does per advertiser.
    if (reading.kind === 'older') {
      this.#warnAboutInstance(instance, new OlderAgentError(reading.address, reading.version));
    } else if (reading.kind === 'malformed') {
      this.#warnAboutInstance(instance, new MalformedServiceError(instance, reading.reason));
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
    this.#inviters.delete(instance);
    const previous = this.#known.get(instance) ?? [];
    this.#known.delete(instance);
    for (const candidate of previous) this.emit('lost', candidate);
  }

  #warnAboutInstance(instance: string, error: Error): void {
    if (this.#warnedInstances.allow(instance, Date.now())) this.emit('warning', error);
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
  return a.address === b.address && a.peerId === b.peerId;
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
