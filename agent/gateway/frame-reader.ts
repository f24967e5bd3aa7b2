// Splits a TCP byte stream into whole MQTT control packets (fixed header + remaining length) before
// mqtt-packet parses them, so an oversize packet is refused from its header, before it is buffered.

export type FrameResult = { frames: Buffer[]; error?: 'malformed' | 'oversize' };

export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPacketBytes: number) {}

  push(chunk: Buffer): FrameResult {
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    while (buffer.length >= 2) {
      let remaining = 0;
      let multiplier = 1;
      let offset = 1;
      let complete = false;
      while (offset < buffer.length && offset <= 4) {
        const byte = buffer[offset] as number;
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        offset++;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (offset > 4) return { frames, error: 'malformed' }; // a fifth length byte
        break;
      }
      const total = offset + remaining;
      if (total > this.maxPacketBytes) return { frames, error: 'oversize' };
      if (buffer.length < total) break;
      frames.push(buffer.subarray(0, total));
      buffer = buffer.subarray(total);
    }
    this.#pending = buffer;
    return { frames };
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
