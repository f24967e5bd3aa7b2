// In-order delivery across a handover between two links to the same peer. When the peer moves its
// traffic to another link (an upgrade to Wi-Fi, a return from BLE), messages still in flight on the old,
// slower link must reach the app before the first ones of the new link. The peer ends its use of the
// old link with a CUTOVER on it (links are ordered, so it comes after the last DATA there); messages that
// arrive on the new link first are held until that CUTOVER arrives, the old link closes, or HOLD_MS
// passes (a CUTOVER that never comes must not stall the peer).

/** Longest a new link's messages wait for the old link's CUTOVER. */
export const HOLD_MS = 2_000;
/** Messages held at most: a flood on the new link during a handover spills, in order, at once. */
const MAX_HELD = 4_096;

interface Held<Link, Item> {
  readonly via: Link;
  readonly items: Item[];
  readonly timer: NodeJS.Timeout;
}

export class HandoverOrder<Link, Item> {
  /** The link the last delivered message came on. */
  #current: Link | undefined;
  /** A link whose CUTOVER arrived before anything came on its successor. */
  #endedEarly: Link | undefined;
  #held: Held<Link, Item> | undefined;

  constructor(
    private readonly deliver: (item: Item) => void,
    private readonly isOpen: (link: Link) => boolean,
    private readonly holdMs = HOLD_MS,
  ) {}

  /** A message arrived on `via`: delivered now, or held while the previous link may still hold older ones. */
  receive(via: Link, item: Item): void {
    const held = this.#held;
    if (held !== undefined) {
      if (via !== held.via) {
        // The old link's in-flight messages: they come first.
        this.deliver(item);
        return;
      }
      held.items.push(item);
      if (held.items.length >= MAX_HELD) this.#release();
      return;
    }
    const previous = this.#current;
    const isHandover = previous !== undefined && previous !== via && this.isOpen(previous);
    if (isHandover && this.#endedEarly !== previous) {
      const timer = setTimeout(() => this.#release(), this.holdMs);
      timer.unref();
      this.#held = { via, items: [item], timer };
      return;
    }
    this.#endedEarly = undefined;
    this.#current = via;
    this.deliver(item);
  }

  /** The peer's CUTOVER on `via`: everything it sent there has arrived. */
  cutover(via: Link): void {
    if (this.#held !== undefined && this.#held.via !== via) {
      this.#release();
      return;
    }
    if (this.#current === via) this.#endedEarly = via;
  }

  /** A link closed: nothing more will come on it. */
  closed(via: Link): void {
    if (this.#held !== undefined && this.#held.via !== via) this.#release();
    if (this.#current === via) this.#current = undefined;
  }

  /** Hands the new link's held messages over, in their order, and makes it the current one. */
  #release(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(held.timer);
    this.#current = held.via;
    this.#endedEarly = undefined;
    for (const item of held.items) this.deliver(item);
  }
}
