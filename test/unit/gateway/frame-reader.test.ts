import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameReader, type NextFrame } from '../../../agent/gateway/frame-reader.js';

/** Appends `chunk` and takes every packet now whole; the error, if the stream broke. */
function push(reader: FrameReader, chunk: Buffer): { frames: Buffer[]; error?: NextFrame } {
  reader.append(chunk);
  const frames: Buffer[] = [];
  for (;;) {
    const next = reader.next();
    if (next === 'incomplete') return { frames };
    if (typeof next === 'string') return { frames, error: next };
    frames.push(next);
  }
}

function publish(payloadBytes: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic: 'big/one',
    payload: Buffer.alloc(payloadBytes, 7),
    qos: 0,
    retain: false,
    dup: false,
  });
}

describe('FrameReader', () => {
  it('joins a 1 MB packet sent 10 bytes at a time with each byte copied once', () => {
    const packet = publish(1024 * 1024);
    const reader = new FrameReader(2 * 1024 * 1024);
    const frames: Buffer[] = [];
    for (let at = 0; at < packet.length; at += 10) {
      const result = push(reader, packet.subarray(at, at + 10));
      expect(result.error).toBeUndefined();
      frames.push(...result.frames);
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]?.equals(packet)).toBe(true);
    expect(reader.bytesCopied).toBe(packet.length); // not ~length²/20, as joining every chunk would cost
    expect(reader.pendingBytes).toBe(0);
  });

  it('hands out packets that arrive whole, or several in one chunk, without copying', () => {
    const one = publish(100);
    const two = publish(200);
    const reader = new FrameReader(1024);
    const result = push(reader, Buffer.concat([one, two, one.subarray(0, 5)]));
    expect(result.frames.map((frame) => frame.length)).toEqual([one.length, two.length]);
    expect(reader.pendingBytes).toBe(5);
    expect(push(reader, one.subarray(5)).frames[0]?.equals(one)).toBe(true);
    expect(reader.bytesCopied).toBe(one.length); // only the one split across chunks
  });

  it('hands out one packet per call, the rest staying pending until asked for', () => {
    const one = publish(100);
    const reader = new FrameReader(1024);
    reader.append(Buffer.concat([one, one]));
    expect(reader.next()).toEqual(one);
    expect(reader.pendingBytes).toBe(one.length);
    expect(reader.next()).toEqual(one);
    expect(reader.next()).toBe('incomplete');
    expect(reader.pendingBytes).toBe(0);
  });

  it('reads a remaining length split across chunks', () => {
    const packet = publish(20_000); // three length bytes
    const reader = new FrameReader(64 * 1024);
    expect(push(reader, packet.subarray(0, 2)).frames).toEqual([]);
    expect(push(reader, packet.subarray(2, 3)).frames).toEqual([]);
    expect(push(reader, packet.subarray(3)).frames).toHaveLength(1);
  });

  it('refuses an oversize packet from its header and a fifth length byte', () => {
    expect(push(new FrameReader(1024), publish(2000).subarray(0, 4)).error).toBe('oversize');
    expect(push(new FrameReader(1024), Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])).error).toBe(
      'malformed',
    );
  });
});
