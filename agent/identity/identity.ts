// The device's long-term Ed25519 identity: created once in data_dir, loaded on every start.
// The secure channel signs its Noise static key with it, which is what makes a peer id proven; the same
// key, mapped to X25519, agrees a pairwise secret with any other identity (origin tags, §2.1).
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
import { ed25519 } from '@noble/curves/ed25519.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import { NearmeshError } from '../core/errors.js';
import { peerIdFromPublicKey } from '../core/peer-id.js';
import { x25519, x25519PrivateKey } from './x25519.js';

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
  /**
   * X25519 between this identity and another one's Ed25519 public key, both mapped to Montgomery form
   * (RFC 7748 birational map, as libsodium's crypto_sign_ed25519_*_to_curve25519). Throws KeyAgreementError
   * for a key that is not a valid Ed25519 point or gives an all-zero secret.
   */
  agree(peerPublicKey: Uint8Array): Uint8Array;
}

export class KeyAgreementError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('key-agreement', message, options);
  }
}

export function identityFromPrivateKey(privateKey: KeyObject): Identity {
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof jwk.d !== 'string')
    throw new IdentityError('identity key is not an Ed25519 private key');
  const publicKey = Uint8Array.from(Buffer.from(jwk.x, 'base64url'));
  const agreementKey = x25519PrivateKey(
    ed25519.utils.toMontgomerySecret(Uint8Array.from(Buffer.from(jwk.d, 'base64url'))),
  );
  return {
    peerId: peerIdFromPublicKey(publicKey),
    publicKey,
    sign: (data) => Uint8Array.from(sign(null, data, privateKey)),
    agree: (peerPublicKey) => agree(agreementKey, peerPublicKey),
  };
}

function agree(agreementKey: KeyObject, peerPublicKey: Uint8Array): Uint8Array {
  let montgomery: Uint8Array;
  try {
    montgomery = ed25519.utils.toMontgomery(peerPublicKey);
  } catch (error) {
    throw new KeyAgreementError('peer key is not a valid Ed25519 public key', { cause: error });
  }
  try {
    return x25519(agreementKey, montgomery);
  } catch (error) {
    throw new KeyAgreementError('key agreement failed: low-order peer key', { cause: error });
  }
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
