// Names stay honest (PROTOCOL.md §13.2): a name belongs to the first identity that claimed it here (in a
// signed ANNOUNCE or a handshake), and the binding survives restarts. Another identity claiming a bound name
// is a conflict: shown as such, logged once, and the name is then ambiguous until one of them goes, so
// `send NAME` never quietly picks the wrong device. The registry also remembers every member met (the
// trust store keeps them), which is who may still link with an old mesh key during a key rotation.

import { setBounded } from '../core/bounded-map.js';

/** Claims remembered per name, and names with claims remembered at all: bounded whatever is announced. */
const MAX_CLAIMANTS_PER_NAME = 8;
const MAX_CLAIMED_NAMES = 4_096;
/** Members and name bindings kept (in memory as in the trust store); the first met goes first. */
export const MAX_MEMBERS = 16_384;

/** Where bindings and members persist (TrustStore). */
export interface MemberStore {
  nameBindings(): { name: string; id: string }[];
  bindName(name: string, id: string): void;
  unbindName(name: string): boolean;
  members(): { id: string }[];
  saveMember(id: string, publicKey: Uint8Array | null): void;
}

/** What a claim of a name by an id turned out to be. */
export type ClaimOutcome = 'bound' | 'held' | 'conflict';

export class MemberRegistry {
  /** name → the id it belongs to (persisted). */
  readonly #bindings = new Map<string, string>();
  /** name → ids that claimed it → when last, most recent last. */
  readonly #claims = new Map<string, Map<string, number>>();
  /** Members met, first met first (the value is unused: a Map, so setBounded can bound it). */
  readonly #members = new Map<string, true>();
  readonly #reported = new Set<string>();

  constructor(private readonly store?: MemberStore) {
    for (const { name, id } of store?.nameBindings() ?? []) setBounded(this.#bindings, name, id, MAX_MEMBERS);
    for (const { id } of store?.members() ?? []) setBounded(this.#members, id, true, MAX_MEMBERS);
  }

  /**
   * `id` calls itself `name`. The first id to claim a free name gets it for good; the id holding it keeps
   * it; any other id is a conflict (reported once per id and name by a 'conflict' the first time).
   */
  claim(id: string, name: string, nowMs = Date.now()): ClaimOutcome {
    this.noteMember(id);
    this.#noteClaim(name, id, nowMs);
    const owner = this.#bindings.get(name);
    if (owner === undefined) {
      setBounded(this.#bindings, name, id, MAX_MEMBERS);
      this.store?.bindName(name, id);
      return 'bound';
    }
    return owner === id ? 'held' : 'conflict';
  }

  /** True the first time a conflict of this id over this name is seen (so it is logged once). */
  isNewConflict(id: string, name: string): boolean {
    const key = `${name}\0${id}`;
    if (this.#reported.has(key)) return false;
    if (this.#reported.size >= MAX_CLAIMED_NAMES) this.#reported.clear();
    this.#reported.add(key);
    return true;
  }

  /** The id `name` belongs to, if any. */
  ownerOf(name: string): string | undefined {
    return this.#bindings.get(name);
  }

  /** The names that belong to `id`. */
  namesOwnedBy(id: string): string[] {
    return [...this.#bindings].filter(([, owner]) => owner === id).map(([name]) => name);
  }

  /** Whether `id` claims a name that belongs to another id. */
  isImpostor(id: string, name: string): boolean {
    const owner = this.#bindings.get(name);
    return owner !== undefined && owner !== id;
  }

  /** Every id that claimed `name`, the owner first, then the others, most recent claim first. */
  claimants(name: string): string[] {
    const owner = this.#bindings.get(name);
    const others = [...(this.#claims.get(name)?.keys() ?? [])].filter((id) => id !== owner).reverse();
    return owner === undefined ? others : [owner, ...others];
  }

  /** Frees a name (an operator replaced the device it belonged to); the next claim binds it again. */
  release(name: string): boolean {
    this.#claims.delete(name);
    const had = this.#bindings.delete(name);
    this.store?.unbindName(name);
    return had;
  }

  /** Members remembered. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether `id` was met (of the last MAX_MEMBERS first met). */
  isKnownMember(id: string): boolean {
    return this.#members.has(id);
  }

  /** Records a member met (a handshake, a verified message); persisted with its key when given. */
  noteMember(id: string, publicKey: Uint8Array | null = null): void {
    if (this.#members.has(id) && publicKey === null) return;
    if (!this.#members.has(id)) setBounded(this.#members, id, true, MAX_MEMBERS);
    this.store?.saveMember(id, publicKey);
  }

  #noteClaim(name: string, id: string, nowMs: number): void {
    let claims = this.#claims.get(name);
    if (claims === undefined) {
      claims = new Map();
      setBounded(this.#claims, name, claims, MAX_CLAIMED_NAMES);
    }
    setBounded(claims, id, nowMs, MAX_CLAIMANTS_PER_NAME);
  }
}
