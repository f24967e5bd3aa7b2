// The device's long-term Ed25519 identity: created once in data_dir, loaded on every start.
// The secure channel signs its Noise static key with it, which is what makes a peer id proven.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NearmeshError } from '../errors.js';
import { writeFileAtomic } from '../ops/atomic-file.js';
import { peerIdFromPublicKey } from './peer-id.js';

export const IDENTITY_FILE = 'identity.pem';

export class IdentityError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('identity', message, options);
  }
}

export interface Identity {
  readonly peerId: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

export function identityFromPrivateKey(privateKey: KeyObject): Identity {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
    throw new IdentityError('identity key is not Ed25519');
  const publicKey = Uint8Array.from(Buffer.from(jwk.x, 'base64url'));
  return {
    peerId: peerIdFromPublicKey(publicKey),
    publicKey,
    sign: (data) => Uint8Array.from(sign(null, data, privateKey)),
  };
}

export function generateIdentity(): Identity {
  return identityFromPrivateKey(generateKeyPairSync('ed25519').privateKey);
}

/** Checks an Ed25519 signature made by the holder of a raw 32-byte public key. Never throws. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** Loads `<dataDir>/identity.pem`, creating it (mode 0600, atomically) on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<Identity> {
  const path = join(dataDir, IDENTITY_FILE);
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityError(`cannot read identity ${path}: ${(error as Error).message}`, { cause: error });
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFileAtomic(path, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    return identityFromPrivateKey(privateKey);
  }
  try {
    return identityFromPrivateKey(createPrivateKey(pem));
  } catch (error) {
    throw new IdentityError(`identity ${path} is not a valid Ed25519 private key`, { cause: error });
  }
}
