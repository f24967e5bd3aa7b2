// Splits a TCP byte stream into whole MQTT control packets (fixed header + remaining length) before
// mqtt-packet parses them, so an oversize packet is refused from its header, before it is buffered.
// Chunks of an unfinished packet are kept in a list and joined once, when the packet is whole: a packet
// trickled in tiny chunks costs work linear in its size, not quadratic.

/** The next whole packet, or why there is none: more bytes are needed, or the stream is broken. */
export type NextFrame = Buffer | 'incomplete' | 'malformed' | 'oversize';

/** The fixed header's longest form: the type byte and four remaining-length bytes. */
const MAX_HEADER_BYTES = 5;

export class FrameReader {
  #chunks: Buffer[] = [];
  #pendingBytes = 0;
  /** Size of the packet at the head of the chunks, once its header is whole. */
  #frameBytes: number | undefined;
  #bytesCopied = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Bytes received and not yet taken as whole packets. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes copied to join chunks so far (each byte at most once): what reading has cost. */
  get bytesCopied(): number {
    return this.#bytesCopied;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  /** Takes the packet at the head once it is whole; the reader may be asked one packet at a time. */
  next(): NextFrame {
    if (this.#frameBytes === undefined) {
      const header = this.#readHeader();
      if (header === 'incomplete' || header === 'malformed') return header;
      if (header > this.maxPacketBytes) return 'oversize';
      this.#frameBytes = header;
    }
    if (this.#pendingBytes < this.#frameBytes) return 'incomplete';
    const frame = this.#take(this.#frameBytes);
    this.#frameBytes = undefined;
    return frame;
  }

  /** The whole size of the packet at the head, from its fixed header. */
  #readHeader(): number | 'incomplete' | 'malformed' {
    let remaining = 0;
    let multiplier = 1;
    for (let offset = 1; offset < MAX_HEADER_BYTES; offset++) {
      const byte = this.#byteAt(offset);
      if (byte === undefined) return 'incomplete';
      remaining += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) return offset + 1 + remaining;
    }
    return 'malformed'; // a fifth length byte
  }

  /** A byte among the first few pending ones (the header), or undefined if not received yet. */
  #byteAt(index: number): number | undefined {
    let at = index;
    for (const chunk of this.#chunks) {
      if (at < chunk.length) return chunk[at];
      at -= chunk.length;
    }
    return undefined;
  }

  /** Removes `bytes` from the head: a view when one chunk holds them, else one copy. */
  #take(bytes: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    this.#pendingBytes -= bytes;
    if (first.length >= bytes) {
      if (first.length === bytes) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const frame = Buffer.allocUnsafe(bytes);
    let filled = 0;
    let index = 0;
    while (filled < bytes) {
      const chunk = this.#chunks[index] as Buffer;
      const used = Math.min(chunk.length, bytes - filled);
      chunk.copy(frame, filled, 0, used);
      filled += used;
      if (used === chunk.length) index++;
      else this.#chunks[index] = chunk.subarray(used);
    }
    this.#chunks.splice(0, index); // once: shifting chunk by chunk would be quadratic again
    this.#bytesCopied += bytes;
    return frame;
  }
}

/** The raw topic bytes of a PUBLISH frame, or undefined if the frame is too short to hold them. */
export function rawPublishTopic(frame: Buffer): Buffer | undefined {
  let offset = 1;
  while (offset < frame.length && ((frame[offset] as number) & 0x80) !== 0) offset++;
  offset++;
  if (offset + 2 > frame.length) return undefined;
  const length = frame.readUInt16BE(offset);
  if (offset + 2 + length > frame.length) return undefined;
  return frame.subarray(offset + 2, offset + 2 + length);
}

/** The protocol level byte of a CONNECT frame, or undefined if it is not a readable CONNECT. */
export function connectProtocolLevel(frame: Buffer): number | undefined {
  if (((frame[0] as number) & 0xf0) !== 0x10) return undefined;
  const topic = rawPublishTopic(frame); // same layout: length-prefixed protocol name after the header
  if (topic === undefined) return undefined;
  const at = topic.byteOffset - frame.byteOffset + topic.length;
  return at < frame.length ? frame[at] : undefined;
}
