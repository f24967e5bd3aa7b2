import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../../agent/gateway/frame-reader.js';

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
      const result = reader.push(packet.subarray(at, at + 10));
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
    const result = reader.push(Buffer.concat([one, two, one.subarray(0, 5)]));
    expect(result.frames.map((frame) => frame.length)).toEqual([one.length, two.length]);
    expect(reader.pendingBytes).toBe(5);
    expect(reader.push(one.subarray(5)).frames[0]?.equals(one)).toBe(true);
    expect(reader.bytesCopied).toBe(one.length); // only the one split across chunks
  });

  it('reads a remaining length split across chunks', () => {
    const packet = publish(20_000); // three length bytes
    const reader = new FrameReader(64 * 1024);
    expect(reader.push(packet.subarray(0, 2)).frames).toEqual([]);
    expect(reader.push(packet.subarray(2, 3)).frames).toEqual([]);
    expect(reader.push(packet.subarray(3)).frames).toHaveLength(1);
  });

  it('refuses an oversize packet from its header and a fifth length byte', () => {
    expect(new FrameReader(1024).push(publish(2000).subarray(0, 4)).error).toBe('oversize');
    expect(new FrameReader(1024).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])).error).toBe(
      'malformed',
    );
  });
});
