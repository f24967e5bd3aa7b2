// The identities removed from the mesh (PROTOCOL.md §13.5). A revocation is signed by an admin (any member
// when `[security] admins` is empty) and checked on its own, so it can travel any way and be passed on by
// anyone; once taken it is kept for good (in the trust store). The digest of the list goes into every
// ANNOUNCE, so two neighbours that hold different lists notice and swap them.
import { createHash } from 'node:crypto';
import { peerIdFromPublicKey, peerIdToBytes } from '../core/peer-id.js';
import { type Identity, verifySignature } from '../identity/identity.js';
import { REVOCATION_DIGEST_BYTES } from '../protocol/announcement.js';
import { type Revocation, revocationSigningBytes } from '../protocol/trust.js';

export const REVOCATION_DIGEST_CONTEXT = 'nearmesh/2 revocations';
/** Revocations held at most: a mesh of Pis does not revoke thousands of devices; more is refused, counted. */
export const MAX_REVOCATIONS = 4_096;

export type RevocationOutcome = 'added' | 'known' | 'unauthorised' | 'bad-signature' | 'full';

export class RevocationList {
  readonly #entries = new Map<string, Revocation>();
  #digest: Uint8Array | undefined;

  constructor(
    /** Whether this peer id is an admin (anyone is, without an admin list). */
    private readonly isAdmin: (peerId: string) => boolean,
    private readonly persist: (revocation: Revocation) => void = () => {},
  ) {}

  /**
   * Whether the holder of `peerId` may revoke and rekey: an admin that is not itself revoked. The one
   * rule for both, so a revoked member (or admin) can never spread revocations or keys again.
   */
  mayAdminister(peerId: string): boolean {
    return this.isAdmin(peerId) && !this.#entries.has(peerId);
  }

  get size(): number {
    return this.#entries.size;
  }

  has(peerId: string): boolean {
    return this.#entries.has(peerId);
  }

  entries(): Revocation[] {
    return [...this.#entries.values()];
  }

  /** First 8 bytes of SHA-256("nearmesh/2 revocations" ‖ the revoked ids as bytes, in ascending order). */
  digest(): Uint8Array {
    if (this.#digest === undefined) {
      const hash = createHash('sha256').update(REVOCATION_DIGEST_CONTEXT, 'utf8');
      for (const id of [...this.#entries.keys()].sort()) hash.update(peerIdToBytes(id));
      this.#digest = Uint8Array.from(hash.digest().subarray(0, REVOCATION_DIGEST_BYTES));
    }
    return this.#digest;
  }

  /** Takes a revocation after checking its signature and its issuer's right. */
  add(revocation: Revocation): RevocationOutcome {
    if (this.#entries.has(revocation.revoked)) return 'known';
    if (!this.mayAdminister(peerIdFromPublicKey(revocation.issuerKey))) return 'unauthorised';
    if (!isSignedByIssuer(revocation)) return 'bad-signature';
    if (this.#entries.size >= MAX_REVOCATIONS) return 'full';
    this.#entries.set(revocation.revoked, revocation);
    this.#digest = undefined;
    this.persist(revocation);
    return 'added';
  }

  /**
   * Loads revocations taken before: checked when they were taken, and the store sits beside the identity key
   * in data_dir (0600), so they are not verified again at every start (thousands of signatures on a Pi Zero).
   */
  restore(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) {
      if (this.#entries.size >= MAX_REVOCATIONS) break;
      this.#entries.set(revocation.revoked, revocation);
    }
    this.#digest = undefined;
  }
}

/** A revocation of `revoked` signed by `issuer`. */
export function signRevocation(
  issuer: Identity,
  revoked: string,
  reason: string,
  issuedAtMs = Date.now(),
): Revocation {
  const fields = { revoked, issuerKey: issuer.publicKey, issuedAtMs, reason };
  return { ...fields, signature: issuer.sign(revocationSigningBytes(fields)) };
}

function isSignedByIssuer(revocation: Revocation): boolean {
  return verifySignature(revocation.issuerKey, revocationSigningBytes(revocation), revocation.signature);
}
