// The join exchange (PROTOCOL.md §18) on a fresh FrameLink, both sides. The joiner sends HELLO with its
// CPace share, the inviter REPLY with its own; each derives ISK from the invitation code, then one key per
// direction. The joiner's PROOF (its card sealed under its key) shows the inviter it holds the code; only
// then does the inviter seal the GRANT (the mesh key, name and admins) under the other key. A wrong code
// is one failed PROOF: the inviter answers REFUSED wrong-code and counts it against the invitation.
import { hkdfSync, randomBytes } from 'node:crypto';
import type { FrameLink } from '../../transports/transport.js';
import { NearmeshError } from '../core/errors.js';
import { peerIdFromPublicKey } from '../core/peer-id.js';
import type { Identity } from '../identity/identity.js';
import { DecodeError } from '../protocol/errors.js';
import {
  decodeJoinerCard,
  decodeJoinGrant,
  decodeJoinProof,
  decodeJoinReply,
  encodeJoinerCard,
  encodeJoinGrant,
  encodeJoinHello,
  encodeJoinProof,
  encodeJoinReply,
  JOIN_CONTEXT,
  JOIN_SID_BYTES,
  type JoinerCard,
  type JoinGrant,
  type JoinHello,
  type JoinRefusal,
} from '../protocol/join.js';
import { decodeKeyRotation, keyIdOf } from '../protocol/trust.js';
import { cpaceParty } from './cpace.js';
import type { InviteCode } from './join-code.js';
import { aeadDecrypt, aeadEncrypt } from './noise-crypto.js';

const encoder = new TextEncoder();
export const JOIN_CHANNEL_ID = encoder.encode(JOIN_CONTEXT);
export const JOINER_AD = encoder.encode('joiner');
export const INVITER_AD = encoder.encode('inviter');
const EMPTY = new Uint8Array(0);
export const DEFAULT_JOIN_STEP_TIMEOUT_MS = 10_000;

export type JoinFailure = JoinRefusal | 'timeout' | 'link-closed' | 'protocol';

/** The exchange failed: the inviter refused (wrong-code, closed), or the link or the peer let us down. */
export class JoinError extends NearmeshError {
  constructor(
    readonly reason: JoinFailure,
    message: string,
    /** After wrong-code: how many more tries the invitation allows. */
    readonly attemptsLeft?: number,
  ) {
    super('join', message);
  }
}

/** The keys of one run: the joiner seals its PROOF with `joiner`, the inviter its GRANT with `inviter`. */
export function joinKeys(isk: Uint8Array, sid: Uint8Array): { joiner: Uint8Array; inviter: Uint8Array } {
  const derive = (label: string): Uint8Array =>
    new Uint8Array(hkdfSync('sha256', isk, sid, `${JOIN_CONTEXT} ${label}`, 32));
  return { joiner: derive('joiner'), inviter: derive('inviter') };
}

/** A grant that arrived, with the inviter's peer id (a claim the first Noise link to it proves). */
export interface ReceivedGrant extends JoinGrant {
  inviterId: string;
}

/** The joiner's side: resolves with the grant, or rejects with a JoinError. Closing `link` is the caller's. */
export async function joinWithCode(
  link: FrameLink,
  options: { code: InviteCode; identity: Identity; name: string; stepTimeoutMs?: number; sid?: Uint8Array },
): Promise<ReceivedGrant> {
  const frames = new FrameInbox(link, options.stepTimeoutMs ?? DEFAULT_JOIN_STEP_TIMEOUT_MS);
  try {
    const sid = options.sid ?? Uint8Array.from(randomBytes(JOIN_SID_BYTES));
    const party = cpaceParty({
      prs: encoder.encode(options.code.digits),
      ci: JOIN_CHANNEL_ID,
      sid,
      ad: JOINER_AD,
      isInitiator: true,
    });
    link.send(encodeJoinHello({ discriminator: options.code.discriminator, sid, share: party.share }));
    const reply = inviterReply(await frames.next());
    if (reply.kind !== 'reply')
      throw new JoinError('protocol', `the inviter sent ${reply.kind} before its share`);
    const isk = party.finish(reply.share, INVITER_AD);
    if (isk === undefined)
      throw new JoinError('protocol', "the inviter's share is not a valid group element");
    const keys = joinKeys(isk, sid);
    const card = encodeJoinerCard({ publicKey: options.identity.publicKey, name: options.name });
    link.send(encodeJoinProof(aeadEncrypt(keys.joiner, 0n, EMPTY, card)));
    const outcome = inviterReply(await frames.next());
    if (outcome.kind !== 'grant') throw new JoinError('protocol', 'the inviter sent its share twice');
    let plaintext: Uint8Array;
    try {
      plaintext = aeadDecrypt(keys.inviter, 0n, EMPTY, outcome.sealed);
    } catch {
      throw new JoinError('protocol', 'the grant does not open: that agent does not hold this code');
    }
    const grant = decodeJoinGrant(plaintext);
    if (grant instanceof DecodeError) throw new JoinError('protocol', grant.message);
    const problem = keysProblem(grant);
    if (problem !== undefined) throw new JoinError('protocol', `the grant is inconsistent: ${problem}`);
    return { ...grant, inviterId: peerIdFromPublicKey(grant.inviterKey) };
  } finally {
    frames.dispose();
  }
}

/** What the inviter sends once a PROOF arrived: the grant, or a refusal. */
export type JoinDecision =
  | { kind: 'grant'; grant: JoinGrant }
  | { kind: 'refused'; reason: JoinRefusal; attemptsLeft: number };

export interface JoinAnswerer {
  readonly code: InviteCode;
  /** Called once per exchange with the PROOF's card, or undefined when it did not open (a wrong code). */
  decide(card: JoinerCard | undefined): JoinDecision;
}

/**
 * The inviter's side, from the HELLO that opened the link. Resolves with the joiner's card once the grant
 * went out, or with the reason it did not (never rejects). Closing `link` is the caller's.
 */
export async function answerJoin(
  link: FrameLink,
  hello: JoinHello,
  answerer: JoinAnswerer,
  stepTimeoutMs = DEFAULT_JOIN_STEP_TIMEOUT_MS,
): Promise<{ joined: JoinerCard } | { failed: JoinFailure | 'refused' }> {
  const frames = new FrameInbox(link, stepTimeoutMs);
  try {
    const party = cpaceParty({
      prs: encoder.encode(answerer.code.digits),
      ci: JOIN_CHANNEL_ID,
      sid: hello.sid,
      ad: INVITER_AD,
      isInitiator: false,
    });
    const isk = party.finish(hello.share, JOINER_AD);
    if (isk === undefined) return { failed: 'protocol' };
    link.send(encodeJoinReply({ kind: 'reply', share: party.share }));
    const sealed = decodeJoinProof(await frames.next());
    if (sealed instanceof DecodeError) return { failed: 'protocol' };
    const keys = joinKeys(isk, hello.sid);
    const card = openCard(keys.joiner, sealed);
    const decision = answerer.decide(card);
    if (decision.kind === 'refused' || card === undefined) {
      if (decision.kind === 'refused') link.send(encodeJoinReply(decision));
      await link.drained();
      return { failed: 'refused' };
    }
    const grant = aeadEncrypt(keys.inviter, 0n, EMPTY, encodeJoinGrant(decision.grant));
    link.send(encodeJoinReply({ kind: 'grant', sealed: grant }));
    await link.drained();
    return { joined: card };
  } catch (error) {
    return { failed: error instanceof JoinError ? error.reason : 'protocol' };
  } finally {
    frames.dispose();
  }
}

/** The grant's rotation record (after epoch 0) is for its epoch and names its key. */
function keysProblem(grant: JoinGrant): string | undefined {
  if (grant.rotation === null) return undefined;
  const rotation = decodeKeyRotation(grant.rotation);
  if (rotation instanceof DecodeError) return `its rotation record: ${rotation.message}`;
  if (rotation.epoch !== grant.epoch) return 'its rotation record is for another epoch';
  return Buffer.compare(keyIdOf(grant.key), rotation.keyId) === 0
    ? undefined
    : 'its rotation record names another key';
}

function openCard(key: Uint8Array, sealed: Uint8Array): JoinerCard | undefined {
  try {
    const card = decodeJoinerCard(aeadDecrypt(key, 0n, EMPTY, sealed));
    return card instanceof DecodeError ? undefined : card;
  } catch {
    return undefined;
  }
}

function inviterReply(frame: Uint8Array) {
  const reply = decodeJoinReply(frame);
  if (reply instanceof DecodeError) throw new JoinError('protocol', reply.message);
  if (reply.kind === 'refused') {
    const message =
      reply.reason === 'wrong-code'
        ? `wrong code (${reply.attemptsLeft} more ${reply.attemptsLeft === 1 ? 'try' : 'tries'} before the invitation closes)`
        : 'no invitation with this code is open there (expired, used, or closed after too many wrong codes)';
    throw new JoinError(reply.reason, message, reply.attemptsLeft);
  }
  return reply;
}

/** Frames of a link, one at a time, each within a timeout; a close or silence is a JoinError. */
class FrameInbox {
  readonly #queue: Uint8Array[] = [];
  #waiter: { resolve: (frame: Uint8Array) => void; reject: (error: Error) => void } | undefined;
  #closed: JoinError | undefined;
  readonly #onFrame = (frame: Uint8Array): void => {
    if (this.#waiter === undefined) this.#queue.push(frame);
    else this.#waiter.resolve(frame);
  };
  readonly #onClose = (): void => {
    this.#closed = new JoinError('link-closed', 'the other side closed the link');
    this.#waiter?.reject(this.#closed);
  };

  constructor(
    private readonly link: FrameLink,
    private readonly timeoutMs: number,
  ) {
    link.on('frame', this.#onFrame);
    link.on('close', this.#onClose);
    if (!link.isOpen) this.#closed = new JoinError('link-closed', 'the link is closed');
  }

  next(): Promise<Uint8Array> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new JoinError('timeout', `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.#waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          reject(error);
        },
      };
    });
  }

  dispose(): void {
    this.link.off('frame', this.#onFrame);
    this.link.off('close', this.#onClose);
  }
}
