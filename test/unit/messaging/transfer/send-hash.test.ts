// The sender's running SHA-256 (agent/messaging/transfer/send-hash.ts): fed chunk by chunk it is the file's
// hash; a resume may go back to a chunk start not yet acknowledged and end with the same hash, and it says
// when it cannot go back (the sender then hashes the file's prefix again).
import { createHash, randomBytes } from 'node:crypto';
import { expect, test } from 'vitest';
import { SendHash } from '../../../../agent/messaging/transfer/send-hash.js';

const file = new Uint8Array(randomBytes(10_000));
const whole = createHash('sha256').update(file).digest('hex');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function fed(upTo: number, chunk = 1000): SendHash {
  const hash = new SendHash(createHash('sha256'), 0);
  for (let offset = 0; offset < upTo; offset += chunk) hash.add(file.subarray(offset, offset + chunk));
  return hash;
}

test('chunk by chunk it is the whole file hash, and digesting does not end it', () => {
  const hash = fed(6000);
  expect(hash.upTo).toBe(6000);
  hash.digest();
  for (let offset = 6000; offset < file.length; offset += 1000)
    hash.add(file.subarray(offset, offset + 1000));
  expect(hex(hash.digest())).toBe(whole);
  expect(hex(hash.digest())).toBe(whole);
});

test('a resume from a chunk start not acknowledged goes on from there to the same hash', () => {
  const hash = fed(8000);
  hash.acknowledged(5000);
  expect(hash.rewind(6000)).toBe(true);
  expect(hash.upTo).toBe(6000);
  for (let offset = 6000; offset < file.length; offset += 1000)
    hash.add(file.subarray(offset, offset + 1000));
  expect(hex(hash.digest())).toBe(whole);
  expect(fed(8000).rewind(8000)).toBe(true);
});

test('it cannot go back before what was acknowledged, into a chunk, or ahead', () => {
  const hash = fed(8000);
  hash.acknowledged(5000);
  expect(hash.rewind(4000)).toBe(false);
  expect(hash.rewind(5500)).toBe(false);
  expect(hash.rewind(9000)).toBe(false);
  expect(hash.rewind(5000)).toBe(true);
  // Gone back to 5000: the later chunk starts are gone with what followed them.
  expect(hash.rewind(7000)).toBe(false);
});

test('started from a prefix hashed elsewhere, it ends at the same hash', () => {
  const hash = new SendHash(createHash('sha256').update(file.subarray(0, 3000)), 3000);
  for (let offset = 3000; offset < file.length; offset += 1000)
    hash.add(file.subarray(offset, offset + 1000));
  expect(hex(hash.digest())).toBe(whole);
});
