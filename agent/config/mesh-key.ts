// The mesh key (the mesh's shared password for the Noise handshake): set as mesh_key (`nearmesh keygen`
// makes one), or kept in <data_dir>/mesh.key, which the first `nearmesh invite` on a device writes (it
// founds a mesh) and `nearmesh join` writes with the key an inviter handed over. An agent with neither has
// no mesh yet: it serves its own device and waits to be invited.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { mkdirDurable } from '../core/durable-fs.js';
import { MESH_KEY_FILE } from './defaults.js';
import { MeshKeyError } from './errors.js';

export const MESH_KEY_BYTES = 32;

export type MeshKeyCheck =
  | { readonly ok: true; readonly value: Uint8Array }
  | { readonly ok: false; readonly expected: string };

/** Validates without throwing, for the config schema. `expected` never contains the key itself. */
export function checkMeshKey(text: string): MeshKeyCheck {
  if (/[+/]/.test(text))
    return {
      ok: false,
      expected: 'expected base64url, which uses "-" and "_" where base64 uses "+" and "/"',
    };
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text))
    return { ok: false, expected: 'expected base64url characters only (A-Z a-z 0-9 - _)' };
  const unpadded = text.replace(/=+$/, '');
  const bytes = Buffer.from(unpadded, 'base64url');
  if (bytes.length !== MESH_KEY_BYTES || (text.length !== 43 && text !== `${unpadded}=`)) {
    return {
      ok: false,
      expected: `expected base64url of exactly ${MESH_KEY_BYTES} bytes (43 characters, as "nearmesh keygen" prints)`,
    };
  }
  // Node ignores stray low bits in the last character; refuse them so one key has exactly one spelling.
  if (bytes.toString('base64url') !== unpadded)
    return { ok: false, expected: 'expected canonical base64url (the last character is off)' };
  return { ok: true, value: Uint8Array.from(bytes) };
}

/** A fresh random key, as `nearmesh keygen` prints it. */
export function generateMeshKey(): string {
  return randomBytes(MESH_KEY_BYTES).toString('base64url');
}

/** Decodes a base64url mesh key (surrounding whitespace ignored); throws MeshKeyError without echoing the key. */
export function parseMeshKey(text: string): Uint8Array {
  const trimmed = text.trim();
  const result = checkMeshKey(trimmed);
  if (!result.ok)
    throw new MeshKeyError(`invalid mesh key: ${result.expected}, got ${trimmed.length} characters`);
  return result.value;
}

/** Reads <dataDir>/mesh.key: undefined when there is none (the agent has no mesh yet). */
export async function loadMeshKey(dataDir: string): Promise<Uint8Array | undefined> {
  const path = join(dataDir, MESH_KEY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    return parseMeshKey(text);
  } catch (error) {
    // Name the file: the operator must fix or delete it, and deleting it takes the device out of its mesh.
    const reason = error instanceof Error ? error.message : String(error);
    throw new MeshKeyError(`${path}: ${reason}`, { cause: error });
  }
}

/** Writes <dataDir>/mesh.key (mode 0600, atomically). */
export async function saveMeshKey(dataDir: string, key: Uint8Array): Promise<void> {
  await mkdirDurable(dataDir);
  await writeFileAtomic(join(dataDir, MESH_KEY_FILE), `${Buffer.from(key).toString('base64url')}\n`, 0o600);
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}
