// The agent's invitation: one at a time, valid for a few minutes, for one device, and closed for good after
// a few wrong codes. It decides each join exchange's outcome (agent/security/join-exchange.ts) at the
// moment the PROOF arrives, so exchanges running side by side cannot overrun the attempts or the one use.
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { peerIdFromPublicKey } from '../core/peer-id.js';
import type { JoinerCard, JoinGrant } from '../protocol/join.js';
import { formatInviteCode, generateInviteCode, type InviteCode } from '../security/join-code.js';
import type { JoinAnswerer, JoinDecision } from '../security/join-exchange.js';

export const DEFAULT_INVITE_TTL_MS = 5 * 60_000;
export const MAX_INVITE_TTL_MS = 60 * 60_000;
export const DEFAULT_INVITE_ATTEMPTS = 3;
export const MAX_INVITE_ATTEMPTS = 10;

export type InvitationState = 'open' | 'joined' | 'expired' | 'failed' | 'cancelled';

export interface InvitationStatus {
  readonly id: number;
  readonly state: InvitationState;
  /** As a person types it: 1234-5678-901 (only while open, and only to the local user who asked). */
  readonly code: string;
  readonly discriminator: number;
  readonly expiresAtMs: number;
  readonly attemptsLeft: number;
  /** Who joined, when state is joined. */
  readonly joined?: { readonly peer: string; readonly name: string };
}

export interface InvitationsEvents {
  /** An invitation opened or closed: discovery shows or withdraws its discriminator. */
  change: (open: InvitationStatus | undefined) => void;
}

/** An invitation option out of range (a typed error the control socket passes on). */
export class InvitationError extends NearmeshError {
  constructor(message: string) {
    super('invitation', message);
  }
}

export interface InvitationsOptions {
  /** What a new member receives (the current key, the mesh's name and admins, this agent's card). */
  grant: () => JoinGrant;
  counters: Counters;
  log: Logger;
  now?: () => number;
}

interface Invitation {
  id: number;
  code: InviteCode;
  expiresAtMs: number;
  attemptsLeft: number;
  state: InvitationState;
  joined?: { peer: string; name: string };
  timer: NodeJS.Timeout;
}

export class Invitations extends TypedEmitter<InvitationsEvents> {
  #current: Invitation | undefined;
  #nextId = 1;
  readonly #now: () => number;

  constructor(private readonly options: InvitationsOptions) {
    super();
    this.#now = options.now ?? Date.now;
  }

  /** Opens a new invitation (closing one still open). Throws InvitationError for options out of range. */
  open(options: { ttlMs?: number; attempts?: number } = {}): InvitationStatus {
    const ttlMs = options.ttlMs ?? DEFAULT_INVITE_TTL_MS;
    const attempts = options.attempts ?? DEFAULT_INVITE_ATTEMPTS;
    if (!Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > MAX_INVITE_TTL_MS)
      throw new InvitationError(
        `an invitation lasts 1 s to ${MAX_INVITE_TTL_MS / 60_000} min, not ${ttlMs} ms`,
      );
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_INVITE_ATTEMPTS)
      throw new InvitationError(
        `an invitation allows 1 to ${MAX_INVITE_ATTEMPTS} wrong codes, not ${attempts}`,
      );
    if (this.#current?.state === 'open') this.#close(this.#current, 'cancelled');
    const invitation: Invitation = {
      id: this.#nextId++,
      code: generateInviteCode(),
      expiresAtMs: this.#now() + ttlMs,
      attemptsLeft: attempts,
      state: 'open',
      timer: setTimeout(() => this.#expire(invitation), ttlMs),
    };
    invitation.timer.unref();
    this.#current = invitation;
    this.options.counters.increment('join.invitations');
    this.options.log.info(
      { invitation: invitation.id, expires_in_s: Math.round(ttlMs / 1000) },
      `invitation open for ${Math.round(ttlMs / 1000)} s: a new device joins with "nearmesh join CODE"`,
    );
    this.emit('change', statusOf(invitation));
    return statusOf(invitation);
  }

  /** The invitation `id` (or the latest), or undefined when there is none. */
  status(id?: number): InvitationStatus | undefined {
    const current = this.#current;
    if (current === undefined || (id !== undefined && current.id !== id)) return undefined;
    return statusOf(current);
  }

  /** The open invitation's status, for discovery. */
  get openInvitation(): InvitationStatus | undefined {
    return this.#current?.state === 'open' ? statusOf(this.#current) : undefined;
  }

  /** Closes the open invitation; false when none was open. */
  cancel(): boolean {
    if (this.#current?.state !== 'open') return false;
    this.#close(this.#current, 'cancelled');
    return true;
  }

  /** The answerer for a HELLO naming `discriminator`: undefined unless an invitation with it is open. */
  answererFor(discriminator: number): JoinAnswerer | undefined {
    const invitation = this.#current;
    if (invitation?.state !== 'open' || invitation.code.discriminator !== discriminator) return undefined;
    return {
      code: invitation.code,
      decide: (card) => this.#decide(invitation, card),
    };
  }

  stop(): void {
    if (this.#current?.state === 'open') this.#close(this.#current, 'cancelled');
  }

  #decide(invitation: Invitation, card: JoinerCard | undefined): JoinDecision {
    const { counters, log } = this.options;
    if (invitation.state !== 'open') {
      counters.increment('join.refused_closed');
      return { kind: 'refused', reason: 'closed', attemptsLeft: 0 };
    }
    if (card === undefined) {
      invitation.attemptsLeft -= 1;
      counters.increment('join.wrong_codes');
      log.warn(
        { invitation: invitation.id, attempts_left: invitation.attemptsLeft },
        `a device tried to join with a wrong code (${invitation.attemptsLeft} more allowed)`,
      );
      if (invitation.attemptsLeft === 0) {
        this.#close(invitation, 'failed');
        log.warn(
          { invitation: invitation.id },
          'invitation closed after too many wrong codes: open a new one',
        );
      }
      return { kind: 'refused', reason: 'wrong-code', attemptsLeft: invitation.attemptsLeft };
    }
    const peer = peerIdFromPublicKey(card.publicKey);
    invitation.joined = { peer, name: card.name };
    this.#close(invitation, 'joined');
    counters.increment('join.joined');
    log.info({ invitation: invitation.id, peer, name: card.name }, `${card.name} (${peer}) joined the mesh`);
    return { kind: 'grant', grant: this.options.grant() };
  }

  #expire(invitation: Invitation): void {
    if (invitation.state !== 'open') return;
    this.options.counters.increment('join.expired');
    this.options.log.info({ invitation: invitation.id }, 'invitation expired unused');
    this.#close(invitation, 'expired');
  }

  #close(invitation: Invitation, state: Exclude<InvitationState, 'open'>): void {
    invitation.state = state;
    clearTimeout(invitation.timer);
    this.emit('change', undefined);
  }
}

function statusOf(invitation: Invitation): InvitationStatus {
  return {
    id: invitation.id,
    state: invitation.state,
    code: invitation.state === 'open' ? formatInviteCode(invitation.code) : '',
    discriminator: invitation.code.discriminator,
    expiresAtMs: invitation.expiresAtMs,
    attemptsLeft: invitation.attemptsLeft,
    ...(invitation.joined !== undefined && { joined: { ...invitation.joined } }),
  };
}
