// The SHA-256 a sender puts in DONE, computed from the bytes it reads for the CHUNKs, so the file is read
// once, not hashed first and read again. A resume goes on from where the receiver stands: after a link drop
// that is the start of a chunk sent but not acknowledged, so the hash as it was there is kept for each of
// them (a copy of the hash state, a few hundred bytes); anything else (the receiver restarted and holds
// less) is hashed again from the file.
import type { Hash } from 'node:crypto';

export class SendHash {
  #hash: Hash;
  #upTo: number;
  /** The hash at the start of each chunk not yet acknowledged, oldest first. */
  #marks: { offset: number; hash: Hash }[] = [];

  /** `hash` has been fed the file's first `upTo` bytes. */
  constructor(hash: Hash, upTo: number) {
    this.#hash = hash;
    this.#upTo = upTo;
  }

  /** Bytes of the file hashed so far. */
  get upTo(): number {
    return this.#upTo;
  }

  /** Hashes the chunk that follows what is hashed, remembering the hash at its start. */
  add(chunk: Uint8Array): void {
    this.#marks.push({ offset: this.#upTo, hash: this.#hash.copy() });
    this.#hash.update(chunk);
    this.#upTo += chunk.length;
  }

  /** The receiver holds every byte below `offset`: no resume goes back before it. */
  acknowledged(offset: number): void {
    let drop = 0;
    while (drop < this.#marks.length && (this.#marks[drop]?.offset ?? 0) < offset) drop++;
    this.#marks.splice(0, drop);
  }

  /** Goes back to `offset` (where it stands or a chunk start not acknowledged); false when it cannot. */
  rewind(offset: number): boolean {
    if (offset === this.#upTo) return true;
    const index = this.#marks.findIndex((mark) => mark.offset === offset);
    const mark = this.#marks[index];
    if (mark === undefined) return false;
    this.#hash = mark.hash;
    this.#upTo = offset;
    this.#marks.length = index;
    return true;
  }

  /** SHA-256 of the bytes hashed; hashing may go on (a DONE sent again after a resume). */
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.copy().digest());
  }
}
