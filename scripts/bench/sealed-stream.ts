// Row 3's second baseline: the least any authenticated stream over TCP in Node does per message, with the cipher
// nearmesh links use. Each message is sealed with ChaCha20-Poly1305 from node:crypto (a fresh cipher per message,
// the nonce a counter, as every AEAD channel must) and written as [u32 length][ciphertext][tag]; the receiver
// reassembles frames and opens each. No protocol, no handshake: a floor, not something an agent could ship.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Socket } from 'node:net';

const TAG_BYTES = 16;
const HEADER_BYTES = 4;

function nonce(counter: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32LE(counter, 4);
  return bytes;
}

/** Seals and writes one message; socket.write's back-pressure answer. */
export function writeSealed(
  socket: Socket,
  key: Uint8Array,
  counter: number,
  plaintext: Uint8Array,
): boolean {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: TAG_BYTES });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(ciphertext.length + TAG_BYTES);
  socket.cork();
  socket.write(header);
  socket.write(ciphertext);
  const isBelowHighWater = socket.write(cipher.getAuthTag());
  socket.uncork();
  return isBelowHighWater;
}

/** Reassembles length-prefixed frames from a socket's chunks and opens each, in order. */
export class SealedReader {
  readonly #key: Uint8Array;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #counter = 0;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /** Takes one chunk; returns the plaintexts of the frames it completed. Throws on a frame that fails to open. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const opened: Buffer[] = [];
    for (;;) {
      if (this.#buffered < HEADER_BYTES) return opened;
      const head = this.#peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (this.#buffered < HEADER_BYTES + length) return opened;
      const frame = this.#take(HEADER_BYTES + length).subarray(HEADER_BYTES);
      const decipher = createDecipheriv('chacha20-poly1305', this.#key, nonce(this.#counter++), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAuthTag(frame.subarray(length - TAG_BYTES));
      const plaintext = decipher.update(frame.subarray(0, length - TAG_BYTES));
      decipher.final();
      opened.push(plaintext);
    }
  }

  #peek(bytes: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= bytes) return first;
    return Buffer.concat(this.#chunks, bytes);
  }

  #take(bytes: number): Buffer {
    const all = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#chunks = all.length > bytes ? [all.subarray(bytes)] : [];
    this.#buffered -= bytes;
    return all.subarray(0, bytes);
  }
}
