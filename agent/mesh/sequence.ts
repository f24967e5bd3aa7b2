// The sequence numbers this agent gives the routed messages it originates (PROTOCOL.md §13.4): one counter
// for every DATA and ANNOUNCE, never reused, even across restarts and power cuts. As Bluetooth Mesh's SEQ it
// is reserved on disk in blocks: a block is written before its first number is used, so a restart starts
// after the last reservation (skipping at most one block) and a disk write happens once per block. It also
// starts no lower than the clock (1 024 numbers per millisecond since 1970): an agent whose reservations were
// lost (trust.sqlite deleted, an old backup restored) still starts above every number it used before, as
// long as its clock is right, instead of being taken for a replayer until it catches up.

/** Numbers reserved at a time: one durable write per 65 536 routed messages. */
export const SEQUENCE_BLOCK = 65_536;
/** The clock floor's rate: far more than any agent sends, so the floor never overtakes a live counter. */
export const SEQUENCES_PER_MS = 1_024;

/** Where reservations persist (TrustStore). */
export interface SequenceReservations {
  readonly reservedSequence: number;
  reserveSequence(limit: number): void;
}

export class SequenceCounter {
  #next: number;
  #limit: number;

  constructor(
    private readonly reservations: SequenceReservations,
    /** Told when a reservation could not be written (the counter carries on in memory). */
    private readonly onPersistError: (error: unknown) => void = () => {},
    nowMs: number = Date.now(),
  ) {
    this.#next = Math.max(reservations.reservedSequence, Math.floor(nowMs) * SEQUENCES_PER_MS);
    this.#limit = this.#next;
  }

  next(): number {
    if (this.#next >= this.#limit) {
      this.#limit = this.#next + SEQUENCE_BLOCK;
      try {
        this.reservations.reserveSequence(this.#limit);
      } catch (error) {
        // A full disk must not stop the mesh; a restart before the next reservation may reuse numbers,
        // which receivers then drop as replays until the counter passes them.
        this.onPersistError(error);
      }
    }
    return this.#next++;
  }
}
