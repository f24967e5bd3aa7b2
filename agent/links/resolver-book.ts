// The link manager's account of its resolvers: every candidate a resolver reports is checked here, where it
// enters the agent (a resolver may be a user's code or a script), each resolver holds a bounded number of
// candidates, and what each found, lost, dialled and linked is kept for `nearmesh resolvers`.
import type { PeerCandidate, Resolver } from '../../transports/resolver.js';
import type { Medium } from '../../transports/transport.js';
import { NearmeshError } from '../core/errors.js';
import { checkHostPort } from '../core/host-port.js';
import { isPeerId } from '../core/peer-id.js';

/** How many candidates one resolver may hold at a time unless told otherwise: a building's worth of agents. */
export const DEFAULT_MAX_CANDIDATES = 256;

/** The resolvers the agent brings: their names are not free for others (config, embedding). */
export const BUILT_IN_RESOLVERS = ['static', 'joined', 'mdns', 'ble', 'endpoints'] as const;

const RESOLVER_NAME = /^[a-z0-9_-]{1,32}$/;
const MAX_CANDIDATE_NAME_CHARS = 63;
/** A BLE address (noble's peripheral id) or a memory-link name: short, printable. */
const OPAQUE_ADDRESS = /^[\x21-\x7e]{1,64}$/;

/** A resolver the agent cannot take: its name is malformed or taken by another of its resolvers, or its bound is. */
export class ResolverError extends NearmeshError {
  constructor(
    readonly resolverName: string,
    reason: string,
  ) {
    super('bad-resolver', `resolver ${JSON.stringify(resolverName)}: ${reason}`);
  }
}

/** One resolver as `nearmesh resolvers` shows it. */
export interface ResolverInfo {
  name: string;
  /** "starting", "running", "stopped", "failed", or the resolver's own word (ResolverHealth). */
  state: string;
  detail?: string;
  /** Candidates it holds now. */
  candidates: number;
  found: number;
  lost: number;
  /** Candidates refused: malformed, or a medium this agent has no transport for. */
  invalid: number;
  /** Candidates beyond its bound, not taken. */
  dropped: number;
  /** Dials of addresses it reported, and how many of them ended in an authenticated link. */
  dials: number;
  links: number;
}

export type CandidateVerdict =
  | { readonly ok: true; readonly candidate: PeerCandidate }
  | { readonly ok: false; readonly reason: string };

/** Checks a candidate a resolver reported; the result carries the resolver's name as its source. */
export function checkCandidate(value: unknown, source: string, mediums: readonly Medium[]): CandidateVerdict {
  if (typeof value !== 'object' || value === null) return { ok: false, reason: 'not an object' };
  const { medium, address, peerId, name } = value as Record<string, unknown>;
  if (typeof medium !== 'string' || !(mediums as readonly string[]).includes(medium))
    return { ok: false, reason: `medium ${JSON.stringify(medium)} is not one of ${mediums.join(', ')}` };
  if (typeof address !== 'string') return { ok: false, reason: 'no address' };
  if (medium === 'wifi') {
    const parsed = checkHostPort(address);
    if (!parsed.ok) return { ok: false, reason: `address ${JSON.stringify(address)}: ${parsed.expected}` };
  } else if (!OPAQUE_ADDRESS.test(address)) {
    return { ok: false, reason: `address ${JSON.stringify(address)} is not 1..64 printable characters` };
  }
  if (peerId !== undefined && (typeof peerId !== 'string' || !isPeerId(peerId)))
    return { ok: false, reason: 'peerId is not 16 lowercase hex digits' };
  if (
    name !== undefined &&
    (typeof name !== 'string' || name.length === 0 || name.length > MAX_CANDIDATE_NAME_CHARS)
  )
    return { ok: false, reason: `name is not 1..${MAX_CANDIDATE_NAME_CHARS} characters` };
  return {
    ok: true,
    candidate: {
      medium: medium as Medium,
      address,
      ...(peerId !== undefined && { peerId: peerId as string }),
      ...(name !== undefined && { name: name as string }),
      source,
    },
  };
}

/** What the book needs of a resolver: the link manager's own (endpoints heard from peers) has no more. */
type AccountedResolver = Pick<Resolver, 'name' | 'health' | 'maxCandidates'>;

class ResolverAccount {
  state: 'starting' | 'running' | 'stopped' | 'failed' = 'starting';
  failure: string | undefined;
  readonly addresses = new Set<string>();
  found = 0;
  lost = 0;
  invalid = 0;
  dropped = 0;
  dials = 0;
  links = 0;

  constructor(
    readonly resolver: AccountedResolver,
    readonly maxCandidates: number,
  ) {}

  info(): ResolverInfo {
    const health = this.state === 'running' ? this.resolver.health?.() : undefined;
    const detail = health?.detail ?? this.failure;
    return {
      name: this.resolver.name,
      state: health?.state ?? this.state,
      ...(detail !== undefined && { detail }),
      candidates: this.addresses.size,
      found: this.found,
      lost: this.lost,
      invalid: this.invalid,
      dropped: this.dropped,
      dials: this.dials,
      links: this.links,
    };
  }
}

export class ResolverBook {
  readonly #accounts = new Map<string, ResolverAccount>();

  /** Throws ResolverError for a malformed name or one already taken. */
  add(resolver: AccountedResolver): void {
    const { name } = resolver;
    if (typeof name !== 'string' || !RESOLVER_NAME.test(name))
      throw new ResolverError(String(name), 'a name is 1..32 of a-z, 0-9, "_" and "-"');
    if (this.#accounts.has(name)) throw new ResolverError(name, 'another resolver has that name');
    const { maxCandidates = DEFAULT_MAX_CANDIDATES } = resolver;
    if (!Number.isSafeInteger(maxCandidates) || maxCandidates < 1)
      throw new ResolverError(name, 'maxCandidates is not a positive integer');
    this.#accounts.set(name, new ResolverAccount(resolver, maxCandidates));
  }

  started(name: string): void {
    this.#set(name, 'running');
  }

  failed(name: string, error: unknown): void {
    const account = this.#accounts.get(name);
    if (account === undefined) return;
    account.state = 'failed';
    account.failure = error instanceof Error ? error.message : String(error);
  }

  stopped(name: string): void {
    const account = this.#accounts.get(name);
    if (account === undefined) return;
    account.state = 'stopped';
    account.addresses.clear();
  }

  /**
   * Takes a checked candidate into the resolver's account: 'new' for an address it did not hold, 'again' for
   * one it did, 'full' when it holds its bound already (counted as dropped).
   */
  found(candidate: PeerCandidate): 'new' | 'again' | 'full' {
    const account = this.#account(candidate.source);
    account.found++;
    if (account.addresses.has(candidate.address)) return 'again';
    if (account.addresses.size >= account.maxCandidates) {
      account.dropped++;
      return 'full';
    }
    account.addresses.add(candidate.address);
    return 'new';
  }

  /** False when the resolver did not hold that address (nothing to forget). */
  lost(source: string, address: string): boolean {
    const account = this.#account(source);
    if (!account.addresses.delete(address)) return false;
    account.lost++;
    return true;
  }

  invalid(source: string): void {
    this.#account(source).invalid++;
  }

  dialled(sources: Iterable<string>): void {
    for (const source of sources) {
      const account = this.#accounts.get(source);
      if (account !== undefined) account.dials++;
    }
  }

  linked(sources: Iterable<string>): void {
    for (const source of sources) {
      const account = this.#accounts.get(source);
      if (account !== undefined) account.links++;
    }
  }

  list(): ResolverInfo[] {
    return [...this.#accounts.values()].map((account) => account.info());
  }

  #set(name: string, state: ResolverAccount['state']): void {
    const account = this.#accounts.get(name);
    if (account !== undefined) account.state = state;
  }

  #account(name: string): ResolverAccount {
    const account = this.#accounts.get(name);
    if (account === undefined) throw new Error(`resolver ${name} was never added`);
    return account;
  }
}
