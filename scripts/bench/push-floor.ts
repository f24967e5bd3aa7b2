// The least a push of a file can take on this machine, whatever the code around it: the work no push can
// skip, measured in this process on the same file. A push runs the CLI, hashes the whole file before its
// OFFER (the hash is in it), and then the receiver decrypts every chunk and hashes it again as it arrives;
// the receiver's work cannot start before the OFFER, so the three add up. Reading, writing, copies, the
// sender's encryption and the kernel's TCP are left out, so the floor is generous.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WIFI_CHUNK_BYTES } from '../../agent/messaging/transfer/manager.js';
import { aeadDecrypt, aeadEncrypt } from '../../agent/security/noise-crypto.js';

export interface PushFloor {
  readonly senderHashMs: number;
  readonly receiverMs: number;
}

function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/** The sender's SHA-256 of `file`, and the receiver's ChaCha20-Poly1305 open + SHA-256 of its chunks. */
export function measurePushFloor(file: string): PushFloor {
  const bytes = readFileSync(file);
  const key = randomBytes(32);
  const ad = new Uint8Array(0);
  const sealed: Uint8Array[] = [];
  for (let offset = 0, nonce = 0n; offset < bytes.length; offset += WIFI_CHUNK_BYTES, nonce++)
    sealed.push(aeadEncrypt(key, nonce, ad, bytes.subarray(offset, offset + WIFI_CHUNK_BYTES)));

  let startNs = process.hrtime.bigint();
  createHash('sha256').update(bytes).digest();
  const senderHashMs = elapsedMs(startNs);

  startNs = process.hrtime.bigint();
  const hash = createHash('sha256');
  sealed.forEach((ciphertext, index) => {
    hash.update(aeadDecrypt(key, BigInt(index), ad, ciphertext));
  });
  hash.digest();
  return { senderHashMs, receiverMs: elapsedMs(startNs) };
}
