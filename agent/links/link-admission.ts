// Who gets a link: the handshake on every fresh link (in a bounded number of slots, handshake-slots.ts), the
// mesh key a dial seals with, and what happens to the proven peer: this agent itself is told so, a peer the agent refuses (revoked,
// shunned, a stranger with a retired key) is told why, and everyone else is admitted. Refusals and failures
// are counted and logged at most once a minute per peer or host.
import type { FrameLink } from '../../transports/transport.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import { RateLimiter } from '../core/rate-limiter.js';
import type { Identity } from '../identity/identity.js';
import { CloseCode, encodeMessage } from '../protocol/index.js';
import { decodeJoinHello } from '../protocol/join.js';
import { answerJoin, type JoinAnswerer } from '../security/join-exchange.js';
import { establishSecureLink, HandshakeError, type SecureLink } from '../security/secure-channel.js';
import { firstFrame, ReplayedLink } from './first-frame.js';
import { HandshakeSlots, sourceOf } from './handshake-slots.js';

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * An inbound Wi-Fi handshake has this long: three messages over a LAN take milliseconds, even on a Pi
 * Zero, and a slot a stranger holds is given back sooner. BLE (fragmented, slower) keeps the default.
 */
const INBOUND_WIFI_HANDSHAKE_TIMEOUT_MS = 5_000;

export interface AdmissionOptions {
  identity: Identity;
  name: string;
  /**
   * The mesh keys a handshake may use: the current one first, then older ones still accepted during a key
   * rotation. Dials use the first, and the next one when a peer refuses it.
   */
  meshKeys: () => readonly Uint8Array[];
  /**
   * Told of every completed handshake before the link is used; a reason refuses the link (a revoked or
   * shunned identity, an old key from a stranger).
   */
  onAuthenticated?: (link: SecureLink, usedRetiredKey: boolean) => string | undefined;
  /** Every handshake's deadline; default 10 s (5 s for an inbound Wi-Fi link). */
  handshakeTimeoutMs?: number;
  /** Whether a known peer linked from this source address, or the agent dials it: it is let in first. */
  isKnownSource?: (source: string) => boolean;
  /** The agent's open invitation, if any: inbound links may then begin with a join HELLO instead. */
  joins?: JoinDoor;
  log: Logger;
  counters: Counters;
}

/** What the admission needs of the invitation book (agent/trust/invitations.ts). */
export interface JoinDoor {
  /** Whether an invitation is open: only then is an inbound link's first frame read before the handshake. */
  isOpen(): boolean;
  /** The inviter's side for a HELLO naming `discriminator`; undefined: no such invitation (silence). */
  answererFor(discriminator: number): JoinAnswerer | undefined;
}

export interface Admission {
  /** The proven peer id; 'rejected' when the peer closed without answering; undefined when it failed. */
  peerId: string | 'rejected' | undefined;
  /** The link to use, when the peer is admitted. */
  admitted?: SecureLink;
}

export class LinkAdmission {
  readonly #slots: HandshakeSlots;
  readonly #refusedLog = new RateLimiter(60_000);

  constructor(private readonly options: AdmissionOptions) {
    this.#slots = new HandshakeSlots({
      counters: options.counters,
      isKnownSource: options.isKnownSource ?? (() => false),
    });
  }

  /** Closes every link still in its handshake (the agent is stopping). */
  closeAll(): void {
    for (const link of this.#slots.links()) link.close();
  }

  /** Runs the handshake on a fresh link; a dial seals with accepted key `keyIndex`. */
  async admit(link: FrameLink, keyIndex = 0): Promise<Admission> {
    const { options } = this;
    if (link.isInitiator) this.#slots.takeForDial(link);
    else if (!this.#slots.takeForInbound(link)) {
      link.close();
      return { peerId: undefined };
    }
    let handshakeLink = link;
    if (!link.isInitiator && options.joins?.isOpen() === true) {
      const opened = await this.#openingFrame(link, options.joins);
      if (opened === undefined) return { peerId: undefined };
      handshakeLink = opened;
    }
    let secure: SecureLink;
    const keys = options.meshKeys();
    // The list may have shrunk since the index was chosen (a retired key expired): then the current key.
    const dialIndex = keyIndex < keys.length ? keyIndex : 0;
    try {
      secure = await establishSecureLink(handshakeLink, {
        identity: options.identity,
        meshKeys: link.isInitiator ? [keys[dialIndex] as Uint8Array] : keys,
        name: options.name,
        timeoutMs: this.#timeoutFor(link),
      });
    } catch (error) {
      link.close();
      this.#reportFailure(link, error);
      return {
        peerId: error instanceof HandshakeError && error.reason === 'rejected' ? 'rejected' : undefined,
      };
    } finally {
      this.#slots.release(link);
    }
    if (secure.peerId === options.identity.peerId) {
      options.counters.increment('links.self_connections');
      this.#close(secure, CloseCode.selfConnection, 'this is me');
      return { peerId: secure.peerId };
    }
    const usedRetiredKey = link.isInitiator ? dialIndex > 0 : secure.meshKeyIndex > 0;
    const refusal = options.onAuthenticated?.(secure, usedRetiredKey);
    if (refusal !== undefined) {
      options.counters.increment('links.peers_refused');
      if (this.#refusedLog.allow(secure.peerId)) {
        options.log.warn(
          { peer: secure.peerId, medium: secure.medium },
          `refused link: ${refusal} (logged at most once a minute)`,
        );
      }
      this.#close(secure, CloseCode.refused, refusal);
      return { peerId: secure.peerId };
    }
    return { peerId: secure.peerId, admitted: secure };
  }

  /**
   * Reads an inbound link's first frame while an invitation is open: a join HELLO runs the inviter's side
   * (in the link's handshake slot) and the link ends (undefined); anything else goes on to the handshake.
   */
  async #openingFrame(link: FrameLink, joins: JoinDoor): Promise<FrameLink | undefined> {
    const { counters, log } = this.options;
    const timeoutMs = this.#timeoutFor(link);
    const first = await firstFrame(link, timeoutMs);
    const hello = first === undefined ? undefined : decodeJoinHello(first);
    if (first !== undefined && hello === undefined) return new ReplayedLink(link, first);
    try {
      const answerer = hello === undefined ? undefined : joins.answererFor(hello.discriminator);
      if (hello === undefined || answerer === undefined) {
        if (hello !== undefined) counters.increment('join.no_invitation');
        return undefined;
      }
      const outcome = await answerJoin(link, hello, answerer, timeoutMs);
      if ('failed' in outcome && outcome.failed !== 'refused') {
        counters.increment('join.failed');
        log.info(
          { address: link.remoteAddress, reason: outcome.failed },
          `a join attempt failed: ${outcome.failed}`,
        );
      }
      return undefined;
    } finally {
      link.close();
      this.#slots.release(link);
    }
  }

  #timeoutFor(link: FrameLink): number {
    return (
      this.options.handshakeTimeoutMs ??
      (link.medium === 'wifi' && !link.isInitiator
        ? INBOUND_WIFI_HANDSHAKE_TIMEOUT_MS
        : DEFAULT_HANDSHAKE_TIMEOUT_MS)
    );
  }

  #close(secure: SecureLink, code: number, reason: string): void {
    secure.send(encodeMessage({ type: 'close', code, reason }));
    void secure.drained().finally(() => secure.close());
  }

  #reportFailure(link: FrameLink, error: unknown): void {
    const host = sourceOf(link);
    if (error instanceof HandshakeError && error.reason === 'old-protocol') {
      this.options.counters.increment('handshake.old_protocol');
      if (this.#refusedLog.allow(`v1 ${host}`)) {
        this.options.log.warn(
          { address: link.remoteAddress, medium: link.medium },
          'refused link: that agent speaks protocol version 1, this one 2: upgrade it (logged at most once a minute per host)',
        );
      }
      return;
    }
    if (error instanceof HandshakeError && (error.reason === 'auth-failed' || error.reason === 'rejected')) {
      this.options.counters.increment('handshake.refused');
      if (this.#refusedLog.allow(host)) {
        this.options.log.warn(
          { address: link.remoteAddress, medium: link.medium },
          `refused link: ${error.message} (logged at most once a minute per host)`,
        );
      }
      return;
    }
    this.options.counters.increment('handshake.failed');
    this.options.log.debug({ address: link.remoteAddress, err: error }, 'handshake failed');
  }
}
