// The least a push of a file can take on this machine, whatever the code around it: the work no push can
// skip, measured in this process on the same file. A push runs the CLI; then the sender hashes and seals each
// chunk as it sends it (the hash goes with DONE) while the receiver opens and hashes each one as it arrives,
// the two at once on two cores: the floor is the CLI plus the slower side. Reading, writing, copies and the
// kernel's TCP are left out, so the floor is generous.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WIFI_CHUNK_BYTES } from '../../agent/messaging/transfer/manager.js';
import { aeadDecrypt, aeadEncrypt } from '../../agent/security/noise-crypto.js';

export interface PushFloor {
  /** SHA-256 and ChaCha20-Poly1305 seal of every chunk. */
  readonly senderMs: number;
  /** ChaCha20-Poly1305 open and SHA-256 of every chunk. */
  readonly receiverMs: number;
}

function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/** The sender's hash and seal of every chunk of `file`, and the receiver's open and hash of them. */
export function measurePushFloor(file: string): PushFloor {
  const bytes = readFileSync(file);
  const key = randomBytes(32);
  const ad = new Uint8Array(0);
  const sealed: Uint8Array[] = [];
  let startNs = process.hrtime.bigint();
  const sent = createHash('sha256');
  for (let offset = 0, nonce = 0n; offset < bytes.length; offset += WIFI_CHUNK_BYTES, nonce++) {
    const chunk = bytes.subarray(offset, offset + WIFI_CHUNK_BYTES);
    sealed.push(aeadEncrypt(key, nonce, ad, chunk));
    sent.update(chunk);
  }
  sent.digest();
  const senderMs = elapsedMs(startNs);

  startNs = process.hrtime.bigint();
  const received = createHash('sha256');
  sealed.forEach((ciphertext, index) => {
    received.update(aeadDecrypt(key, BigInt(index), ad, ciphertext));
  });
  received.digest();
  return { senderMs, receiverMs: elapsedMs(startNs) };
}
