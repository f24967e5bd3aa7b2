// BLE link framing (transports/ble/fragmentation.ts): exact reassembly at any MTU and any split of the frame,
// hard limits before allocation, and detection of every lost, duplicated or interleaved fragment.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../../agent/core/errors.js';
import { FragmentError } from '../../../../transports/ble/errors.js';
import {
  CONTINUATION_HEADER_BYTES,
  DEFAULT_BLE_MAX_FRAME_BYTES,
  FragmentReassembler,
  FrameFragmenter,
  fragmentCount,
  fragmentFrame,
  lengthVarintBytes,
  MAX_REASSEMBLY_FRAME_BYTES,
  MAX_START_HEADER_BYTES,
  MIN_FRAGMENT_BYTES,
  maxFragmentBytesForMtu,
  SEQUENCE_MODULUS,
  startHeaderBytes,
} from '../../../../transports/ble/fragmentation.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

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

interface Outcome {
  frames: Uint8Array[];
  error: FragmentError | FrameTooLargeError | undefined;
  /** Index of the fragment whose push first reported the error. */
  errorAt: number | undefined;
}

/** Pushes every fragment, one ms apart, copying out frames; keeps pushing after an error, as a link might. */
function reassemble(reassembler: FragmentReassembler, fragments: readonly Uint8Array[]): Outcome {
  const outcome: Outcome = { frames: [], error: undefined, errorAt: undefined };
  fragments.forEach((fragment, index) => {
    const result = reassembler.push(fragment, index);
    outcome.frames.push(...result.frames.map((frame) => Uint8Array.from(frame)));
    if (result.error && outcome.error === undefined) {
      outcome.error = result.error;
      outcome.errorAt = index;
    }
    if (outcome.error) expect(result.error).toBe(outcome.error); // once failed, stays failed
  });
  return outcome;
}

function expectReason(error: unknown, reason: FragmentError['reason']): void {
  expect(error).toBeInstanceOf(FragmentError);
  expect((error as FragmentError).reason).toBe(reason);
  expect((error as FragmentError).code).toBe('ble-fragment');
}

const frameArb = fc.uint8Array({ maxLength: 1500 });
const maxFragmentArb = fc.integer({ min: MIN_FRAGMENT_BYTES, max: 512 });

describe('fragment sizes and header overhead', () => {
  it('carries 20 bytes per fragment at the default MTU 23 and 253 at MTU 256', () => {
    expect(MIN_FRAGMENT_BYTES).toBe(20);
    expect(maxFragmentBytesForMtu(23)).toBe(20);
    expect(maxFragmentBytesForMtu(256)).toBe(253);
    expect(maxFragmentBytesForMtu(517)).toBe(514);
  });

  it('refuses fragments below 20 bytes with a FragmentError, also from an MTU below 23', () => {
    for (const size of [19, 0, -1, 20.5, Number.NaN]) {
      expect(() => fragmentFrame(new Uint8Array(5), size)).toThrow(FragmentError);
      expect(() => fragmentCount(5, size)).toThrow(FragmentError);
    }
    try {
      maxFragmentBytesForMtu(22);
      expect.unreachable();
    } catch (error) {
      expectReason(error, 'fragment-size');
    }
  });

  it('spends 1 header byte per continuation and 1 + a 1..5 byte length on the start fragment', () => {
    expect(CONTINUATION_HEADER_BYTES).toBe(1);
    expect(MAX_START_HEADER_BYTES).toBe(6);
    const cases: Array<[number, number]> = [
      [0, 2],
      [127, 2],
      [128, 3],
      [16_383, 3],
      [16_384, 4],
      [DEFAULT_BLE_MAX_FRAME_BYTES, 4],
      [2 ** 21 - 1, 4],
      [2 ** 21, 5],
      [2 ** 28, 6],
      [0xffff_ffff, 6],
    ];
    for (const [frameBytes, headerBytes] of cases) {
      expect(startHeaderBytes(frameBytes)).toBe(headerBytes);
      expect(lengthVarintBytes(frameBytes)).toBe(headerBytes - 1);
    }
  });

  it('fills every fragment but the last, and fragmentCount() predicts the count', () => {
    fc.assert(
      fc.property(frameArb, maxFragmentArb, (frame, maxFragmentBytes) => {
        const fragments = fragmentFrame(frame, maxFragmentBytes);
        expect(fragments).toHaveLength(fragmentCount(frame.length, maxFragmentBytes));
        fragments.forEach((fragment, i) => {
          if (i < fragments.length - 1) expect(fragment.length).toBe(maxFragmentBytes);
          else expect(fragment.length).toBeLessThanOrEqual(maxFragmentBytes);
        });
        const overheadBytes =
          startHeaderBytes(frame.length) + (fragments.length - 1) * CONTINUATION_HEADER_BYTES;
        expect(fragments.reduce((n, f) => n + f.length, 0)).toBe(frame.length + overheadBytes);
      }),
      { numRuns: 300 },
    );
  });
});

describe('fragmentFrame test vectors (PROTOCOL.md §12.1)', () => {
  it('cuts a 50-byte frame at MTU 23 into 20 + 20 + 14 bytes', () => {
    const frame = Uint8Array.from({ length: 50 }, (_, i) => i);
    expect(fragmentFrame(frame, 20).map(hex)).toEqual([
      '8032000102030405060708090a0b0c0d0e0f1011',
      '0112131415161718191a1b1c1d1e1f2021222324',
      '0225262728292a2b2c2d2e2f3031',
    ]);
  });

  it('is the example PROTOCOL.md §12.1 shows', () => {
    const protocol = readFileSync(new URL('../../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    // The document spaces the header bytes apart from the frame bytes: "80 32 0001…", "01 1213…".
    const asDocumented = (fragment: Uint8Array, headerBytes: number): string =>
      [
        ...[...fragment.subarray(0, headerBytes)].map((byte) => hex(Uint8Array.of(byte))),
        hex(fragment.subarray(headerBytes)),
      ]
        .filter((text) => text !== '')
        .join(' ');
    const fragments = fragmentFrame(
      Uint8Array.from({ length: 50 }, (_, i) => i),
      20,
    );
    fragments.forEach((fragment, i) => {
      expect(protocol).toContain(`\n${asDocumented(fragment, i === 0 ? 2 : 1)} `);
    });
    const zeroLength = fragmentFrame(new Uint8Array(0), 20, fragments.length)[0]!;
    expect(protocol).toContain(`single fragment \`${asDocumented(zeroLength, 2)}\``);
  });

  it('writes a zero-length frame as one 2-byte start fragment', () => {
    expect(fragmentFrame(new Uint8Array(0), 20).map(hex)).toEqual(['8000']);
    expect(fragmentFrame(new Uint8Array(0), 20, 63).map(hex)).toEqual(['bf00']);
  });

  it('writes the length as a minimal big-endian base-128 varint', () => {
    expect(hex(fragmentFrame(new Uint8Array(300), 253)[0]!.subarray(0, 3))).toBe('80822c');
    expect(hex(fragmentFrame(new Uint8Array(65_536), 253, 5)[0]!.subarray(0, 4))).toBe('85848000');
  });

  it('numbers fragments from firstSequence on, modulo 64', () => {
    const fragments = fragmentFrame(new Uint8Array(100), 20, 62);
    expect(fragments.map((f) => f[0]! & 0x3f)).toEqual([62, 63, 0, 1, 2, 3]);
    expect(() => fragmentFrame(new Uint8Array(1), 20, 64)).toThrow(RangeError);
    expect(() => fragmentFrame(new Uint8Array(1), 20, -1)).toThrow(RangeError);
  });

  it('gives the same fragments for a frame given whole or as parts', () => {
    fc.assert(
      fc.property(frameArb, maxFragmentArb, fc.array(fc.nat(1500)), (frame, maxFragmentBytes, cuts) => {
        const whole = fragmentFrame(frame, maxFragmentBytes).map(hex);
        expect(fragmentFrame(splitAt(frame, cuts), maxFragmentBytes).map(hex)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe('FrameFragmenter + FragmentReassembler round trip', () => {
  it('reassembles random frames at random MTUs, given as random parts, exactly and in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(frameArb, maxFragmentArb, fc.array(fc.nat(1500), { maxLength: 5 })), {
          maxLength: 40,
        }),
        (plan) => {
          const fragmenter = new FrameFragmenter();
          const fragments = plan.flatMap(([frame, maxFragmentBytes, cuts]) =>
            fragmenter.fragment(splitAt(frame, cuts), maxFragmentBytes),
          );
          expect(fragmenter.nextSequence).toBe(fragments.length % SEQUENCE_MODULUS);
          const reassembler = new FragmentReassembler();
          const outcome = reassemble(reassembler, fragments);
          expect(outcome.error).toBeUndefined();
          expect(outcome.frames.map(hex)).toEqual(plan.map(([frame]) => hex(frame)));
          expect(reassembler.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('carries zero-length frames, alone and between others', () => {
    const fragmenter = new FrameFragmenter();
    const frames = [new Uint8Array(0), Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(0)];
    const fragments = frames.flatMap((frame) => fragmenter.fragment(frame, 20));
    expect(fragments).toHaveLength(4);
    const outcome = reassemble(new FragmentReassembler(), fragments);
    expect(outcome.error).toBeUndefined();
    expect(outcome.frames).toEqual(frames);
  });

  it('keeps numbering across many wraps of the 6-bit sequence number', () => {
    const fragmenter = new FrameFragmenter();
    const reassembler = new FragmentReassembler();
    for (let i = 0; i < 1000; i++) {
      const frame = Uint8Array.from({ length: i % 70 }, (_, j) => i + j);
      const [first, ...rest] = fragmenter.fragment(frame, 20);
      expect(first![0]! & 0x80).toBe(0x80);
      let completed: Uint8Array[] = [];
      for (const fragment of [first!, ...rest]) completed = reassembler.push(fragment, i).frames;
      expect(completed).toEqual([frame]);
    }
    expect(reassembler.error).toBeUndefined();
  });

  it('hands out a single-fragment frame as a view of the fragment, without a copy', () => {
    const [fragment] = fragmentFrame(Uint8Array.of(7, 8, 9), 20);
    const [frame] = new FragmentReassembler().push(fragment!, 0).frames;
    expect(frame).toEqual(Uint8Array.of(7, 8, 9));
    expect(frame?.buffer).toBe(fragment?.buffer);
  });

  it('refuses to fragment a frame over its maxFrameBytes, without using a sequence number', () => {
    const fragmenter = new FrameFragmenter({ maxFrameBytes: 100 });
    expect(fragmenter.fragment(new Uint8Array(100), 20)).toHaveLength(6);
    const before = fragmenter.nextSequence;
    expect(() => fragmenter.fragment([new Uint8Array(60), new Uint8Array(41)], 20)).toThrow(
      FrameTooLargeError,
    );
    expect(fragmenter.nextSequence).toBe(before);
    expect(() => new FrameFragmenter({ maxFrameBytes: -1 })).toThrow(RangeError);
  });
});

describe('FragmentReassembler detects broken fragment streams', () => {
  /** Fragments of several frames, numbered as one link direction numbers them. */
  const streamArb = fc
    .tuple(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }), maxFragmentArb)
    .map(([frames, maxFragmentBytes]) => {
      const fragmenter = new FrameFragmenter();
      return { frames, fragments: frames.flatMap((frame) => fragmenter.fragment(frame, maxFragmentBytes)) };
    });

  /** Frames returned before an error must be exactly the first frames sent: nothing corrupt gets out. */
  function expectPrefixOf(received: readonly Uint8Array[], sent: readonly Uint8Array[]): void {
    expect(received.map(hex)).toEqual(sent.slice(0, received.length).map(hex));
  }

  it('detects a dropped fragment at the next fragment, whichever was dropped', () => {
    fc.assert(
      fc.property(streamArb, fc.nat(), ({ frames, fragments }, pick) => {
        fc.pre(fragments.length >= 2);
        const dropped = pick % (fragments.length - 1); // not the last: something must follow the gap
        const outcome = reassemble(
          new FragmentReassembler(),
          fragments.filter((_, i) => i !== dropped),
        );
        expectReason(outcome.error, 'sequence-gap');
        expect(outcome.errorAt).toBe(dropped);
        expectPrefixOf(outcome.frames, frames);
      }),
      { numRuns: 300 },
    );
  });

  it('detects a duplicated fragment at the duplicate', () => {
    fc.assert(
      fc.property(streamArb, fc.nat(), ({ frames, fragments }, pick) => {
        const duplicated = pick % fragments.length;
        const withDuplicate = [
          ...fragments.slice(0, duplicated + 1),
          fragments[duplicated]!,
          ...fragments.slice(duplicated + 1),
        ];
        const outcome = reassemble(new FragmentReassembler(), withDuplicate);
        expectReason(outcome.error, 'sequence-gap');
        expect(outcome.errorAt).toBe(duplicated + 1);
        expectPrefixOf(outcome.frames, frames);
      }),
      { numRuns: 300 },
    );
  });

  it("detects two frames' fragments interleaved, however they are numbered", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 40, maxLength: 600 }),
        fc.uint8Array({ minLength: 40, maxLength: 600 }),
        maxFragmentArb,
        fc.boolean(),
        (first, second, maxFragmentBytes, isNumberedAsOneRun) => {
          fc.pre(fragmentCount(first.length, maxFragmentBytes) >= 2);
          const a = fragmentFrame(first, maxFragmentBytes);
          // Either one sender numbered both frames (the interleaving breaks the run) or two senders each
          // started at 0 (the second frame repeats numbers): both are caught.
          const b = fragmentFrame(second, maxFragmentBytes, isNumberedAsOneRun ? a.length % 64 : 0);
          const interleaved: Uint8Array[] = [];
          for (let i = 0; i < Math.max(a.length, b.length); i++) {
            if (a[i]) interleaved.push(a[i]!);
            if (b[i]) interleaved.push(b[i]!);
          }
          const outcome = reassemble(new FragmentReassembler(), interleaved);
          expectReason(outcome.error, 'sequence-gap');
          expect(outcome.frames).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a start in the middle of a frame even when its sequence number fits', () => {
    const first = fragmentFrame(new Uint8Array(50), 20);
    const intruder = fragmentFrame(Uint8Array.of(1), 20, 1);
    const outcome = reassemble(new FragmentReassembler(), [first[0]!, intruder[0]!]);
    expectReason(outcome.error, 'unexpected-start');
    expect(outcome.errorAt).toBe(1);
  });

  it('refuses a continuation with no frame in progress', () => {
    // The second fragment of a frame numbered from 63 carries sequence 0, as the link's first fragment must.
    const continuation = fragmentFrame(new Uint8Array(50), 20, 63)[1]!;
    expect(continuation[0]).toBe(0x00);
    expectReason(new FragmentReassembler().push(continuation, 0).error, 'no-start');
  });

  it('refuses empty fragments and fragments that make no progress', () => {
    expectReason(new FragmentReassembler().push(new Uint8Array(0), 0).error, 'empty');
    expectReason(new FragmentReassembler().push(fromHex('8005'), 0).error, 'empty');
    const reassembler = new FragmentReassembler();
    expect(reassembler.push(fromHex('800501'), 0).error).toBeUndefined();
    expectReason(reassembler.push(fromHex('01'), 0).error, 'empty');
  });

  it('refuses fragments carrying more than their frame has left', () => {
    expectReason(new FragmentReassembler().push(fromHex('8002010203'), 0).error, 'overrun');
    expectReason(new FragmentReassembler().push(fromHex('800001'), 0).error, 'overrun');
    const reassembler = new FragmentReassembler();
    expect(reassembler.push(fromHex('80030102'), 0).frames).toEqual([]);
    expectReason(reassembler.push(fromHex('010304'), 0).error, 'overrun');
  });

  it('refuses bad headers: reserved bit, truncated, non-minimal or over-long lengths', () => {
    const cases = [
      'c000', // reserved bit 0x40 set on a start fragment
      '4000', // reserved bit on a continuation
      '80', // start fragment without its length
      '8081', // length announces another byte that is missing
      '80800a00', // non-minimal: a leading zero group
      '809080808000', // 2^32: one more than the varint may declare
      '80818181818101', // a 6-byte varint
    ];
    for (const fragment of cases)
      expectReason(new FragmentReassembler().push(fromHex(fragment), 0).error, 'bad-header');
  });

  it('stays failed: later valid fragments give no frames and the same error', () => {
    const reassembler = new FragmentReassembler();
    const first = reassembler.push(new Uint8Array(0), 0);
    expectReason(first.error, 'empty');
    for (const fragment of fragmentFrame(Uint8Array.of(1), 20)) {
      const later = reassembler.push(fragment, 1);
      expect(later.frames).toEqual([]);
      expect(later.error).toBe(first.error);
    }
    expect(reassembler.error).toBe(first.error);
    expect(reassembler.checkTimeout(1e12)).toBe(first.error);
  });
});

describe('FragmentReassembler limits', () => {
  it('accepts a frame of exactly maxFrameBytes and refuses one byte more at its start fragment', () => {
    const ok = reassemble(
      new FragmentReassembler({ maxFrameBytes: 100 }),
      fragmentFrame(new Uint8Array(100), 20),
    );
    expect(ok.frames).toHaveLength(1);
    const tooLarge = reassemble(
      new FragmentReassembler({ maxFrameBytes: 100 }),
      fragmentFrame(new Uint8Array(101), 20),
    );
    expect(tooLarge.error).toBeInstanceOf(FrameTooLargeError);
    expect(tooLarge.errorAt).toBe(0);
    expect((tooLarge.error as FrameTooLargeError).sizeBytes).toBe(101);
    expect((tooLarge.error as FrameTooLargeError).limitBytes).toBe(100);
  });

  it('refuses a declared 2^31-byte frame from its first fragment, allocating nothing', () => {
    const reassembler = new FragmentReassembler({ maxFrameBytes: MAX_REASSEMBLY_FRAME_BYTES });
    // 2^31 as a varint: 0x88 0x80 0x80 0x80 0x00.
    const start = fromHex('808880808000'.concat('ab'.repeat(14)));
    const before = process.memoryUsage().arrayBuffers;
    const result = reassembler.push(start, 0);
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    expect(result.error).toBeInstanceOf(FrameTooLargeError);
    expect((result.error as FrameTooLargeError).sizeBytes).toBe(2 ** 31);
    expect(grownBytes).toBeLessThan(1024 * 1024);
    expect(reassembler.bufferedBytes).toBe(0);
  });

  it('refuses limits that would let one fragment commit unbounded memory', () => {
    expect(() => new FragmentReassembler({ maxFrameBytes: MAX_REASSEMBLY_FRAME_BYTES + 1 })).toThrow(
      RangeError,
    );
    expect(() => new FragmentReassembler({ maxFrameBytes: 1.5 })).toThrow(RangeError);
    expect(() => new FragmentReassembler({ timeoutMs: 0 })).toThrow(RangeError);
    expect(() => new FragmentReassembler({ timeoutMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });

  it('fails a frame left with no fragment for longer than timeoutMs, on the next push', () => {
    const fragments = fragmentFrame(new Uint8Array(60), 20);
    const reassembler = new FragmentReassembler({ timeoutMs: 1000 });
    reassembler.push(fragments[0]!, 10_000);
    expect(reassembler.deadlineMs).toBe(11_000);
    reassembler.push(fragments[1]!, 11_000); // exactly at the deadline: still in time, and moves it
    expect(reassembler.deadlineMs).toBe(12_000);
    const late = reassembler.push(fragments[2]!, 12_001);
    expectReason(late.error, 'timeout');
    expect(late.frames).toEqual([]);
    expect(reassembler.deadlineMs).toBeUndefined();
    expect(reassembler.bufferedBytes).toBe(0);
  });

  it('lets a timer find the stalled frame with checkTimeout()', () => {
    const reassembler = new FragmentReassembler({ timeoutMs: 1000 });
    expect(reassembler.checkTimeout(0)).toBeUndefined();
    reassembler.push(fragmentFrame(new Uint8Array(60), 20)[0]!, 0);
    expect(reassembler.bufferedBytes).toBe(18);
    expect(reassembler.checkTimeout(1000)).toBeUndefined();
    expectReason(reassembler.checkTimeout(1001), 'timeout');
    expect(reassembler.push(fragmentFrame(new Uint8Array(0), 20, 1)[0]!, 1002).error).toBe(reassembler.error);
  });

  it('does not time out between frames, however long the link is idle', () => {
    const reassembler = new FragmentReassembler({ timeoutMs: 1000 });
    const fragmenter = new FrameFragmenter();
    expect(reassembler.push(fragmenter.fragment(Uint8Array.of(1), 20)[0]!, 0).frames).toHaveLength(1);
    expect(reassembler.checkTimeout(1e9)).toBeUndefined();
    expect(reassembler.push(fragmenter.fragment(Uint8Array.of(2), 20)[0]!, 1e9).frames).toHaveLength(1);
  });
});

describe('FragmentReassembler on hostile input', () => {
  it('turns random fragments into frames or a typed error, never a throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -10, max: 5000 })), {
          maxLength: 30,
        }),
        fc.integer({ min: 0, max: 300 }),
        (pushes, maxFrameBytes) => {
          const reassembler = new FragmentReassembler({ maxFrameBytes, timeoutMs: 1000 });
          for (const [fragment, nowMs] of pushes) {
            const result = reassembler.push(fragment, nowMs);
            for (const frame of result.frames) expect(frame.length).toBeLessThanOrEqual(maxFrameBytes);
            if (result.error)
              expect(
                result.error instanceof FragmentError || result.error instanceof FrameTooLargeError,
              ).toBe(true);
            expect(reassembler.bufferedBytes).toBeLessThanOrEqual(maxFrameBytes);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('survives bit flips in a valid stream without throwing', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 5 }),
        maxFragmentArb,
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 7 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (frames, maxFragmentBytes, flips) => {
          const fragmenter = new FrameFragmenter();
          const fragments = frames.flatMap((frame) => fragmenter.fragment(frame, maxFragmentBytes));
          for (const [which, at, bit] of flips) {
            const fragment = fragments[which % fragments.length]!;
            const index = at % Math.max(1, fragment.length);
            if (fragment.length > 0) fragment[index] = (fragment[index] ?? 0) ^ (1 << bit);
          }
          const reassembler = new FragmentReassembler({ maxFrameBytes: 2000 });
          expect(() => reassemble(reassembler, fragments)).not.toThrow();
        },
      ),
      { numRuns: 500 },
    );
  });
});
