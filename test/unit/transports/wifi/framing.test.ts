// The TCP length-prefix framing: reassembly across any chunking, hard size limit, hostile input.
// Property tests (fast-check) as for every parser: random frames, random splits, random bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../../agent/core/errors.js';
import {
  encodeFrame,
  encodeFrameHeader,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  MAX_ENCODABLE_FRAME_BYTES,
} from '../../../../transports/wifi/framing.js';

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** Cuts bytes at the given offsets (sorted, deduplicated, clamped), keeping empty pieces too. */
function splitAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(offsets.map((o) => Math.min(o, bytes.length)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.subarray(start, cut));
    start = cut;
  }
  return pieces;
}

function decodeAll(
  decoder: FrameDecoder,
  chunks: readonly Uint8Array[],
): { frames: Uint8Array[]; errors: number } {
  const frames: Uint8Array[] = [];
  let errors = 0;
  for (const chunk of chunks) {
    const result = decoder.push(chunk);
    frames.push(...result.frames.map((f) => Uint8Array.from(f)));
    if (result.error) errors++;
  }
  return { frames, errors };
}

describe('encodeFrameHeader', () => {
  it('writes the length as 4 bytes big-endian', () => {
    expect([...encodeFrameHeader(0)]).toEqual([0, 0, 0, 0]);
    expect([...encodeFrameHeader(0x01020304)]).toEqual([1, 2, 3, 4]);
    expect([...encodeFrameHeader(MAX_ENCODABLE_FRAME_BYTES)]).toEqual([255, 255, 255, 255]);
  });

  it('refuses lengths the header cannot carry', () => {
    expect(() => encodeFrameHeader(-1)).toThrow(RangeError);
    expect(() => encodeFrameHeader(2 ** 32)).toThrow(RangeError);
    expect(() => encodeFrameHeader(1.5)).toThrow(RangeError);
  });
});

describe('FrameDecoder', () => {
  it('reassembles random frames split at random boundaries, exactly and in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, rawCuts) => {
          const stream = concat(frames.map(encodeFrame));
          const cuts = rawCuts.map((c) => (stream.length === 0 ? 0 : c % (stream.length + 1)));
          const decoder = new FrameDecoder({ maxFrameBytes: 300 });
          const { frames: decoded, errors } = decodeAll(decoder, splitAt(stream, cuts));
          expect(errors).toBe(0);
          expect(decoded).toEqual(frames);
          expect(decoder.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('handles a stream fed one byte at a time', () => {
    const frames = [
      new Uint8Array(0),
      Uint8Array.from([7]),
      Uint8Array.from({ length: 1000 }, (_, i) => i % 251),
    ];
    const stream = encodeAll(frames);
    const decoder = new FrameDecoder();
    const { frames: decoded } = decodeAll(
      decoder,
      [...stream].map((b) => Uint8Array.of(b)),
    );
    expect(decoded).toEqual(frames);
  });

  it('returns many frames from one chunk, including zero-length ones', () => {
    const frames = Array.from({ length: 100 }, (_, i) => new Uint8Array(i % 3).fill(i));
    const { frames: decoded } = decodeAll(new FrameDecoder(), [encodeAll(frames)]);
    expect(decoded).toEqual(frames);
  });

  it('keeps a partial frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    const stream = encodeFrame(Uint8Array.from([1, 2, 3]));
    expect(decoder.push(stream.subarray(0, 5)).frames).toEqual([]);
    expect(decoder.bufferedBytes).toBe(1);
    expect(decoder.push(stream.subarray(5)).frames).toEqual([Uint8Array.from([1, 2, 3])]);
  });

  it('hands out a view, not a copy, when a frame lies inside one chunk', () => {
    const chunk = encodeFrame(Uint8Array.from([9, 9, 9]));
    const [frame] = new FrameDecoder().push(chunk).frames;
    expect(frame?.buffer).toBe(chunk.buffer);
  });

  it('accepts a frame of exactly maxFrameBytes and refuses one byte more', () => {
    expect(new FrameDecoder({ maxFrameBytes: 10 }).push(encodeFrame(new Uint8Array(10))).frames).toHaveLength(
      1,
    );
    const result = new FrameDecoder({ maxFrameBytes: 10 }).push(encodeFrame(new Uint8Array(11)));
    expect(result.error).toBeInstanceOf(FrameTooLargeError);
    expect(result.error?.sizeBytes).toBe(11);
    expect(result.error?.limitBytes).toBe(10);
  });

  it('rejects a hostile 4 GiB length from the header alone, before any body arrives', () => {
    const decoder = new FrameDecoder();
    const result = decoder.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(result.error).toBeInstanceOf(FrameTooLargeError);
    expect(result.error?.sizeBytes).toBe(MAX_ENCODABLE_FRAME_BYTES);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('never buffers more than one frame plus one chunk, whatever the announced length', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
    // Announce the maximum, then trickle: the decoder holds only what arrived.
    decoder.push(encodeFrameHeader(1 << 20));
    for (let i = 0; i < 100; i++) decoder.push(new Uint8Array(1000));
    expect(decoder.bufferedBytes).toBe(100_000);
  });

  it('returns the frames before an oversized header, then stays failed', () => {
    const good = Uint8Array.from([1, 2]);
    const decoder = new FrameDecoder({ maxFrameBytes: 4 });
    const result = decoder.push(concat([encodeFrame(good), encodeFrameHeader(5), new Uint8Array(5)]));
    expect(result.frames).toEqual([good]);
    expect(result.error).toBeInstanceOf(FrameTooLargeError);
    const later = decoder.push(encodeFrame(good));
    expect(later.frames).toEqual([]);
    expect(later.error).toBe(result.error);
  });

  it('turns random bytes into frames or a FrameTooLargeError, never a throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 100 }),
        (chunks, maxFrameBytes) => {
          const decoder = new FrameDecoder({ maxFrameBytes });
          let total = 0;
          for (const chunk of chunks) {
            const result = decoder.push(chunk);
            for (const frame of result.frames) {
              expect(frame.length).toBeLessThanOrEqual(maxFrameBytes);
              total += FRAME_HEADER_BYTES + frame.length;
            }
            if (result.error) expect(result.error).toBeInstanceOf(FrameTooLargeError);
          }
          // Whatever was not returned as frames is at most what came in.
          const inBytes = chunks.reduce((n, c) => n + c.length, 0);
          expect(total + decoder.bufferedBytes).toBeLessThanOrEqual(inBytes);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('survives mutations of a valid stream: frames before the damage come out intact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (frames, position, value) => {
          const stream = Uint8Array.from(encodeAll(frames));
          const at = position % stream.length;
          stream[at] = value;
          const decoder = new FrameDecoder({ maxFrameBytes: 50 });
          const { frames: decoded } = decodeAll(decoder, [stream]);
          // Every frame that ends before the damaged byte is exactly what was sent.
          let end = 0;
          for (const [i, frame] of frames.entries()) {
            end += FRAME_HEADER_BYTES + frame.length;
            if (end > at) break;
            expect(decoded[i]).toEqual(frame);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects an invalid limit', () => {
    expect(() => new FrameDecoder({ maxFrameBytes: -1 })).toThrow(RangeError);
    expect(() => new FrameDecoder({ maxFrameBytes: 2 ** 32 })).toThrow(RangeError);
  });
});

function encodeAll(frames: readonly Uint8Array[]): Uint8Array {
  return concat(frames.map(encodeFrame));
}
