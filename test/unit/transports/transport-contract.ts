// The FrameLink guarantees of transports/transport.ts as one suite, run against every implementation
// (TCP, memory, later BLE): a medium that passes it can carry the secure channel and the link manager.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../agent/core/errors.js';
import type { FrameLink, Medium } from '../../../transports/transport.js';
import { until } from '../../support/until.js';

export interface LinkPair {
  initiator: FrameLink;
  responder: FrameLink;
}

export interface FrameLinkHarness {
  name: string;
  medium: Medium;
  /** Whether send() ever answers false (a medium with an unbounded queue never does). */
  hasBackPressure: boolean;
  /** A connected pair; the responder's limit defaults to the initiator's. */
  makePair(options: { maxFrameBytes: number; responderMaxFrameBytes?: number }): Promise<LinkPair>;
  /** Releases everything makePair() created; runs after every test, passed or failed. */
  cleanup(): Promise<void>;
}

/** Records a link's events from now on, with waits that fail with a message instead of hanging. */
export class LinkProbe {
  readonly frames: Uint8Array[] = [];
  readonly closes: Array<Error | undefined> = [];
  /** Frames that arrived after 'close' or after close() was called on this side. */
  framesAfterClose = 0;
  #isClosedLocally = false;

  constructor(readonly link: FrameLink) {
    link.on('frame', (frame) => {
      if (this.closes.length > 0 || this.#isClosedLocally) this.framesAfterClose++;
      // Copy: a frame may be a view into a buffer the transport reuses for nothing else, but be safe.
      this.frames.push(Uint8Array.from(frame));
    });
    link.on('close', (error) => this.closes.push(error));
  }

  close(error?: Error): void {
    this.#isClosedLocally = true;
    this.link.close(error);
  }

  async waitForFrames(count: number, timeoutMs = 10_000): Promise<Uint8Array[]> {
    await until(
      () => `${count} frames (got ${this.frames.length})`,
      () => this.frames.length >= count,
      {
        timeoutMs,
        intervalMs: 2,
      },
    );
    return this.frames;
  }

  async waitForClose(timeoutMs = 10_000): Promise<Error | undefined> {
    await until(`a close on ${this.link.remoteAddress}`, () => this.closes.length > 0, {
      timeoutMs,
      intervalMs: 2,
    });
    return this.closes[0];
  }
}

/** Compares as hex lengths-and-digests: deep equality over 64 KiB arrays is slow and its diffs unreadable. */
export function expectSameFrames(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  const digest = (frame: Uint8Array) => `${frame.length}:${createHash('sha256').update(frame).digest('hex')}`;
  expect(actual.map(digest)).toEqual(expected.map(digest));
}

const MAX_FRAME_BYTES = 64 * 1024;

export function describeFrameLinkContract(harness: FrameLinkHarness): void {
  describe(`FrameLink contract: ${harness.name}`, () => {
    afterEach(async () => {
      await harness.cleanup();
    });

    const pair = (responderMaxFrameBytes?: number) =>
      harness.makePair({
        maxFrameBytes: MAX_FRAME_BYTES,
        ...(responderMaxFrameBytes !== undefined && { responderMaxFrameBytes }),
      });

    it('describes itself: medium, initiator side, remote address, limit', async () => {
      const { initiator, responder } = await pair();
      expect(initiator.medium).toBe(harness.medium);
      expect(responder.medium).toBe(harness.medium);
      expect(initiator.isInitiator).toBe(true);
      expect(responder.isInitiator).toBe(false);
      expect(initiator.remoteAddress).not.toBe('');
      expect(responder.remoteAddress).not.toBe('');
      expect(initiator.maxFrameBytes).toBe(MAX_FRAME_BYTES);
      expect(initiator.isOpen).toBe(true);
      expect(responder.isOpen).toBe(true);
    });

    it('delivers whole frames, in order, both ways, from empty to exactly maxFrameBytes', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      const atInitiator = new LinkProbe(initiator);
      const sizes = [0, 1, 3, 4, 5, 1000, MAX_FRAME_BYTES, 0, 17, MAX_FRAME_BYTES - 1, 4096, 4097];
      const sent = sizes.map((size) => Uint8Array.from(randomBytes(size)));
      for (const frame of sent) initiator.send(frame);
      for (const frame of [...sent].reverse()) responder.send(frame);
      expectSameFrames(await atResponder.waitForFrames(sent.length), sent);
      expectSameFrames(await atInitiator.waitForFrames(sent.length), [...sent].reverse());
      // No duplicates trailing behind: a last frame arrives right after the others, and nothing in between.
      const last = Uint8Array.of(42);
      initiator.send(last);
      expectSameFrames(await atResponder.waitForFrames(sent.length + 1), [...sent, last]);
    });

    it('delivers a frame given as parts as one whole frame, and counts parts toward the limit', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      const parts = [randomBytes(3), new Uint8Array(0), randomBytes(5000), randomBytes(16)].map((p) =>
        Uint8Array.from(p),
      );
      initiator.send(parts);
      initiator.send([Uint8Array.of(7)]);
      expectSameFrames(await atResponder.waitForFrames(2), [
        Uint8Array.from(Buffer.concat(parts)),
        Uint8Array.of(7),
      ]);
      const halves = [new Uint8Array(MAX_FRAME_BYTES / 2), new Uint8Array(MAX_FRAME_BYTES / 2 + 1)];
      expect(() => initiator.send(halves)).toThrow(FrameTooLargeError);
      expect(initiator.isOpen).toBe(true);
    });

    it('tells when bytes last arrived (lastReceivedAtMs), advancing with what the remote sends', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      await until('the clock to pass the last arrival', () => Date.now() > responder.lastReceivedAtMs);
      const sentAt = Date.now();
      expect(responder.lastReceivedAtMs).toBeLessThan(sentAt);
      initiator.send(Uint8Array.from(randomBytes(MAX_FRAME_BYTES)));
      await atResponder.waitForFrames(1);
      expect(responder.lastReceivedAtMs).toBeGreaterThanOrEqual(sentAt);
      expect(responder.lastReceivedAtMs).toBeLessThanOrEqual(Date.now());
    });

    it('refuses an oversized frame in send() with FrameTooLargeError, and the link stays up', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      expect(() => initiator.send(new Uint8Array(MAX_FRAME_BYTES + 1))).toThrow(FrameTooLargeError);
      expect(initiator.isOpen).toBe(true);
      const after = Uint8Array.from([1, 2, 3]);
      initiator.send(after);
      expect(await atResponder.waitForFrames(1)).toEqual([after]);
      expect(atResponder.closes).toEqual([]);
    });

    it('closes the link with FrameTooLargeError when the remote sends a frame over our limit', async () => {
      const { initiator, responder } = await pair(1024);
      const atResponder = new LinkProbe(responder);
      const atInitiator = new LinkProbe(initiator);
      initiator.send(new Uint8Array(1024)); // at the limit: fine
      initiator.send(new Uint8Array(1025)); // within the sender's limit, over the receiver's
      const error = await atResponder.waitForClose();
      expect(error).toBeInstanceOf(FrameTooLargeError);
      expect(atResponder.frames.map((f) => f.length)).toEqual([1024]);
      await atInitiator.waitForClose();
      expect(initiator.isOpen).toBe(false);
    });

    it("emits 'close' exactly once per side, with the error given to close()", async () => {
      const { initiator, responder } = await pair();
      const atInitiator = new LinkProbe(initiator);
      const atResponder = new LinkProbe(responder);
      const reason = new Error('test closes');
      atInitiator.close(reason);
      atInitiator.close();
      atInitiator.close(new Error('second reason'));
      expect(initiator.isOpen).toBe(false);
      expect(await atInitiator.waitForClose()).toBe(reason);
      await atResponder.waitForClose();
      responder.close();
      // Kept: no event marks "no second close is coming" on a closed link; a duplicate gets 50 ms to show.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(atInitiator.closes).toHaveLength(1);
      expect(atResponder.closes).toHaveLength(1);
    });

    it('after close, send() returns false without throwing and no frame is emitted', async () => {
      const { initiator, responder } = await pair();
      const atInitiator = new LinkProbe(initiator);
      const atResponder = new LinkProbe(responder);
      atInitiator.close();
      // The remote has not heard of the close yet: its frames must not surface on our side.
      for (let i = 0; i < 20; i++) responder.send(new Uint8Array([i]));
      expect(initiator.send(new Uint8Array([1]))).toBe(false);
      expect(initiator.send(new Uint8Array(MAX_FRAME_BYTES + 1))).toBe(false);
      await atInitiator.waitForClose();
      // Both ends closed: the remote's frames have arrived (and been dropped) or never will.
      await atResponder.waitForClose();
      expect(initiator.send(new Uint8Array([1]))).toBe(false);
      expect(atInitiator.framesAfterClose).toBe(0);
      await initiator.drained(); // resolves on a closed link
    });

    it('notices a close by the remote: close event, isOpen false, send() false', async () => {
      const { initiator, responder } = await pair();
      const atInitiator = new LinkProbe(initiator);
      responder.close();
      await atInitiator.waitForClose();
      expect(initiator.isOpen).toBe(false);
      expect(initiator.send(new Uint8Array([1]))).toBe(false);
    });

    it('delivers frames sent just before close() and nothing after', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      const sent = Array.from({ length: 50 }, (_, i) => Uint8Array.from(randomBytes(100 + i)));
      for (const frame of sent) initiator.send(frame);
      initiator.close();
      await atResponder.waitForClose();
      expectSameFrames(atResponder.frames, sent);
    });

    it('stops emitting frames as soon as a frame listener closes the link', async () => {
      const { initiator, responder } = await pair();
      let seen = 0;
      responder.on('frame', () => {
        seen++;
        responder.close();
      });
      const atResponder = new LinkProbe(responder);
      const atInitiator = new LinkProbe(initiator);
      for (let i = 0; i < 20; i++) initiator.send(new Uint8Array([i]));
      await atResponder.waitForClose();
      // Both ends closed: the other 19 frames have arrived (and been dropped) or never will.
      await atInitiator.waitForClose();
      expect(seen).toBe(1);
    });

    it('signals back-pressure from send(), resolves drained(), and loses nothing', async () => {
      const { initiator, responder } = await pair();
      const atResponder = new LinkProbe(responder);
      const sent: Uint8Array[] = [];
      let wasRefused = false;
      // Keep sending through back-pressure, waiting on drained() each time it is signalled; 16 MiB
      // outgrows both the socket high-water mark and what the kernel buffers on loopback.
      let mostBuffered = 0;
      for (let i = 0; i < 256; i++) {
        const frame = Uint8Array.from(randomBytes(MAX_FRAME_BYTES));
        sent.push(frame);
        if (!initiator.send(frame)) {
          wasRefused = true;
          mostBuffered = Math.max(mostBuffered, initiator.bufferedBytes);
          await initiator.drained();
        }
      }
      await initiator.drained();
      if (harness.hasBackPressure) {
        expect(wasRefused).toBe(true);
        // What back-pressure held back shows in bufferedBytes (the layers above cut a peer by it).
        expect(mostBuffered).toBeGreaterThan(0);
      }
      expectSameFrames(await atResponder.waitForFrames(sent.length), sent);
    });

    it('resolves drained() when the link closes with data still queued', async () => {
      const { initiator } = await pair();
      for (let i = 0; i < 32; i++) initiator.send(new Uint8Array(MAX_FRAME_BYTES));
      const drained = initiator.drained();
      initiator.close();
      await expect(drained).resolves.toBeUndefined();
    });
  });
}
