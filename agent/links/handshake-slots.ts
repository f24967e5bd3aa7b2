// Who may run a handshake now. Until a link proves it holds the mesh key it costs a slot, and no stranger
// may keep the slots from real peers:
// - one unknown source address holds at most 4 inbound handshakes (a fifth takes the slot of its own oldest
//   silent one, or is refused);
// - when all 256 slots are taken, a newcomer takes the slot of the oldest handshake that has not sent a byte
//   since it was accepted. An attacker without the key can only hold a slot by staying silent (its first
//   message would not open under the mesh key and the link would close at once), while a real peer speaks
//   within a round trip: to push it out, 256 newcomers would have to arrive before its first message;
// - an address a known peer linked from, or one this agent dials, holds up to 64 (many agents behind one
//   address, on one host or a NAT, all redialling a restarted hub; a 65th takes its own oldest silent one,
//   so a stranger sharing that address holds at most a quarter of the slots) and takes the oldest stranger's
//   slot even if that stranger has spoken (a replayed first message).
import type { FrameLink } from '../../transports/transport.js';
import type { Counters } from '../core/counters.js';

export const MAX_HANDSHAKES = 256;
export const MAX_HANDSHAKES_PER_SOURCE = 4;
export const MAX_HANDSHAKES_PER_KNOWN_SOURCE = 64;

interface Slot {
  readonly link: FrameLink;
  readonly source: string;
  readonly known: boolean;
  /** The link's lastReceivedAtMs when it got its slot: unchanged means it has said nothing since. */
  readonly quietSince: number;
}

export interface HandshakeSlotsOptions {
  counters: Counters;
  /** Whether a known peer linked from this source, or the agent dials it (static peers, discovery). */
  isKnownSource: (source: string) => boolean;
}

export class HandshakeSlots {
  /** In the order the handshakes began. */
  readonly #slots = new Map<FrameLink, Slot>();

  constructor(private readonly options: HandshakeSlotsOptions) {}

  get size(): number {
    return this.#slots.size;
  }

  /** Every link holding a slot (to close them when the agent stops). */
  links(): FrameLink[] {
    return [...this.#slots.keys()];
  }

  /**
   * A slot for a link this agent dialled: always given (dials are the agent's own choice, bounded by its
   * targets), and they count towards the total.
   */
  takeForDial(link: FrameLink): void {
    this.#slots.set(link, { link, source: sourceOf(link), known: true, quietSince: link.lastReceivedAtMs });
  }

  /**
   * A slot for an inbound link, making room by closing a stranger's handshake when the rules above allow;
   * false (counted) when there is none to give.
   */
  takeForInbound(link: FrameLink): boolean {
    const { counters } = this.options;
    const source = sourceOf(link);
    const known = this.options.isKnownSource(source);
    const fromSource = [...this.#slots.values()].filter(
      (slot) => !slot.link.isInitiator && slot.source === source,
    );
    const perSource = known ? MAX_HANDSHAKES_PER_KNOWN_SOURCE : MAX_HANDSHAKES_PER_SOURCE;
    if (fromSource.length >= perSource && !this.#evict(fromSource, false)) {
      counters.increment('links.inbound_refused_per_source');
      return false;
    }
    if (this.#slots.size >= MAX_HANDSHAKES) {
      const strangers = [...this.#slots.values()].filter((slot) => !slot.link.isInitiator && !slot.known);
      if (!this.#evict(strangers, known)) {
        counters.increment('links.inbound_refused_busy');
        return false;
      }
    }
    this.#slots.set(link, { link, source, known, quietSince: link.lastReceivedAtMs });
    return true;
  }

  release(link: FrameLink): void {
    this.#slots.delete(link);
  }

  /** Closes the oldest silent one of `candidates` (with `force`, the oldest of them if none is silent). */
  #evict(candidates: readonly Slot[], force: boolean): boolean {
    const victim =
      candidates.find((slot) => slot.link.lastReceivedAtMs === slot.quietSince) ??
      (force ? candidates[0] : undefined);
    if (victim === undefined) return false;
    this.#slots.delete(victim.link);
    victim.link.close();
    this.options.counters.increment('links.handshakes_evicted');
    return true;
  }
}

/** The remote host of a Wi-Fi link (without its port); a BLE link's address as it is. */
export function sourceOf(link: FrameLink): string {
  if (link.medium !== 'wifi') return link.remoteAddress;
  const address = link.remoteAddress;
  const host = address.slice(0, address.lastIndexOf(':'));
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
