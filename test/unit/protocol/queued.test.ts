// QUEUED / RECEIVED (PROTOCOL.md §17): the documented vectors both ways, hostile shapes refused without
// throwing, and the system-payload demultiplexer sending each kind to its service.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../agent/protocol/errors.js';
import { decodeQueued, encodeQueued, type QueuedWireMessage } from '../../../agent/protocol/queued.js';
import { systemServiceOf } from '../../../agent/protocol/system-kind.js';

const EPOCH = '0123456789abcdef';
const VECTORS: [QueuedWireMessage, string][] = [
  [{ kind: 'queued', epoch: EPOCH, seq: 1, payload: Buffer.from('hi') }, '840c480123456789abcdef01426869'],
  [
    { kind: 'queued', epoch: EPOCH, seq: 300, payload: Buffer.from('hello, bravo') },
    '840c480123456789abcdef19012c4c68656c6c6f2c20627261766f',
  ],
  [{ kind: 'received', epoch: EPOCH, upTo: 300 }, '830d480123456789abcdef19012c'],
];
const PROTOCOL_MD = readFileSync(resolve(import.meta.dirname, '../../../docs/PROTOCOL.md'), 'utf8');

describe('QUEUED and RECEIVED', () => {
  it.each(VECTORS)('encodes and decodes the documented vector %#', (message, hex) => {
    expect(Buffer.from(encodeQueued(message)).toString('hex')).toBe(hex);
    const decoded = decodeQueued(Buffer.from(hex, 'hex'));
    expect(decoded).toEqual(
      message.kind === 'queued' ? { ...message, payload: new Uint8Array(message.payload) } : message,
    );
    expect(PROTOCOL_MD).toContain(`\`${hex}\``);
  });

  it('refuses wrong shapes with a DecodeError', () => {
    const bad = [
      '830c480123456789abcdef01', // QUEUED without payload
      '840c470123456789abcd0142686942', // epoch of 7 bytes
      '840c480123456789abcdef004268', // seq 0
      '840d480123456789abcdef0101', // RECEIVED with four fields
      '8309480123456789abcdef01', // another kind
      '840c480123456789abcdeff93c00426869', // seq as the float 1.0
      'ff',
    ];
    for (const hex of bad) expect(decodeQueued(Buffer.from(hex, 'hex'))).toBeInstanceOf(DecodeError);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        decodeQueued(bytes);
      }),
    );
  });

  it('sends each system kind to its service', () => {
    expect(systemServiceOf(Buffer.from(VECTORS[0]![1], 'hex'))).toBe('queued');
    expect(systemServiceOf(Buffer.from(VECTORS[2]![1], 'hex'))).toBe('queued');
    expect(systemServiceOf(Uint8Array.of(0x83, 0x13, 0x00))).toBe('transfer');
    expect(systemServiceOf(Uint8Array.of(0x83, 0x18, 0x1b, 0x00))).toBe('stream');
    expect(systemServiceOf(Uint8Array.of(0x82, 0x01, 0x00))).toBe('coordination');
    expect(systemServiceOf(Uint8Array.of())).toBe('coordination');
  });
});
