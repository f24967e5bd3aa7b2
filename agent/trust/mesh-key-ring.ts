// The mesh keys an agent holds (PROTOCOL.md §13.6): the current one, which it dials with and announces the
// epoch of, and for a while after a rotation the keys it replaced, which it still accepts, so an agent that
// was away during the rotation can link with its old key and be handed the new one (Bluetooth Mesh's Key
// Refresh phases, in short). Epoch 0 is the key of the config (or data_dir/mesh.key); later epochs live in
// <data_dir>/mesh-keys.json (mode 0600), which is ignored when the config's key is changed by hand.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { NearmeshError } from '../core/errors.js';
import { DecodeError } from '../protocol/errors.js';
import { bytesToHex } from '../protocol/fields.js';
import { decodeKeyRotation, encodeKeyRotation, type KeyRotation, keyIdOf } from '../protocol/trust.js';

export const MESH_KEYS_FILE = 'mesh-keys.json';
/** Keys replaced by rotations and still accepted: enough for two quick rotations in a row. */
const MAX_RETIRED_KEYS = 3;

export interface MeshKeyEpoch {
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly keyId: Uint8Array;
  /** The signed record that announced it (absent for epoch 0). */
  readonly rotation: KeyRotation | undefined;
}

interface RetiredKey {
  readonly epoch: number;
  readonly key: Uint8Array;
  /** Accepted until then (ms since the epoch). */
  readonly untilMs: number;
}

export type AdoptOutcome = 'adopted' | 'held' | 'older';

/** mesh-keys.json cannot be read or is damaged (the keys a rotation made, not the config's mesh_key). */
export class MeshKeyRingError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('mesh-keys', message, options);
  }
}

interface KeyFile {
  /** keyIdOf(the epoch-0 key) in hex: the file belongs to the mesh the config names. */
  base: string;
  current: { epoch: number; key: string; rotation: string | null };
  retired: { epoch: number; key: string; untilMs: number }[];
}

export class MeshKeyRing {
  #current: MeshKeyEpoch;
  #retired: RetiredKey[];

  #baseId: string;

  private constructor(
    private readonly path: string | undefined,
    baseId: string,
    current: MeshKeyEpoch,
    retired: RetiredKey[],
  ) {
    this.#baseId = baseId;
    this.#current = current;
    this.#retired = retired;
  }

  /** A ring with only `baseKey` (epoch 0), kept in memory: for tests and tools. */
  static inMemory(baseKey: Uint8Array): MeshKeyRing {
    return new MeshKeyRing(undefined, bytesToHex(keyIdOf(baseKey)), epochZero(baseKey), []);
  }

  /** Loads the ring of `dataDir` for the mesh whose epoch-0 key is `baseKey`. */
  static async load(dataDir: string, baseKey: Uint8Array): Promise<MeshKeyRing> {
    const path = join(dataDir, MESH_KEYS_FILE);
    const baseId = bytesToHex(keyIdOf(baseKey));
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MeshKeyRingError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
      }
      return new MeshKeyRing(path, baseId, epochZero(baseKey), []);
    }
    const file = parseKeyFile(text, path);
    // Another base key: the operator set a new mesh_key by hand, which starts the mesh over at epoch 0.
    if (file.base !== baseId) return new MeshKeyRing(path, baseId, epochZero(baseKey), []);
    const key = Buffer.from(file.current.key, 'base64url');
    const rotation =
      file.current.rotation === null ? undefined : rotationFromHex(file.current.rotation, path);
    const current = { epoch: file.current.epoch, key, keyId: keyIdOf(key), rotation };
    const retired = file.retired.map((entry) => ({
      epoch: entry.epoch,
      key: Uint8Array.from(Buffer.from(entry.key, 'base64url')),
      untilMs: entry.untilMs,
    }));
    return new MeshKeyRing(path, baseId, current, retired);
  }

  get current(): MeshKeyEpoch {
    return this.#current;
  }

  /** When the last key still accepted besides the current one stops being accepted; undefined when none is. */
  retiredUntilMs(nowMs = Date.now()): number | undefined {
    const live = this.#retired.filter((key) => key.untilMs > nowMs);
    return live.length === 0 ? undefined : Math.max(...live.map((key) => key.untilMs));
  }

  /** The keys a handshake may use now: the current one first, then retired ones within their overlap. */
  accepted(nowMs = Date.now()): Uint8Array[] {
    return [this.#current.key, ...this.#retired.filter((key) => key.untilMs > nowMs).map((key) => key.key)];
  }

  /**
   * Takes a rotation's key (already checked: signature, issuer, keyId). A later epoch wins; of two
   * rotations to the same epoch (two admins at once) the smaller keyId wins, so the mesh converges.
   */
  async adopt(rotation: KeyRotation, key: Uint8Array, nowMs = Date.now()): Promise<AdoptOutcome> {
    const current = this.#current;
    if (rotation.epoch < current.epoch) return 'older';
    if (rotation.epoch === current.epoch) {
      const order = Buffer.compare(rotation.keyId, current.keyId);
      if (order === 0) return 'held';
      if (order > 0) return 'older';
    }
    const justRetired = { epoch: current.epoch, key: current.key, untilMs: nowMs + rotation.overlapMs };
    const retired = [justRetired, ...this.#retired.filter((old) => old.untilMs > nowMs)].slice(
      0,
      MAX_RETIRED_KEYS,
    );
    const next = { epoch: rotation.epoch, key: Uint8Array.from(key), keyId: keyIdOf(key), rotation };
    // On disk first: a key this agent dials with must survive a restart (a failed write changes nothing).
    await this.#save(next, retired);
    this.#current = next;
    this.#retired = retired;
    return 'adopted';
  }

  /**
   * Starts over with the key a join handed over, at the mesh's epoch: mesh.key then holds that key (the
   * ring's new base), and nothing older is accepted. Saved first, like adopt().
   */
  async replace(key: Uint8Array, epoch: number, rotation: KeyRotation | undefined): Promise<void> {
    const next = { epoch, key: Uint8Array.from(key), keyId: keyIdOf(key), rotation };
    const baseId = bytesToHex(keyIdOf(key));
    await this.#save(next, [], baseId);
    this.#baseId = baseId;
    this.#current = next;
    this.#retired = [];
  }

  async #save(current: MeshKeyEpoch, retired: readonly RetiredKey[], baseId = this.#baseId): Promise<void> {
    if (this.path === undefined) return;
    const file: KeyFile = {
      base: baseId,
      current: {
        epoch: current.epoch,
        key: Buffer.from(current.key).toString('base64url'),
        rotation: current.rotation === undefined ? null : bytesToHex(encodeKeyRotation(current.rotation)),
      },
      retired: retired.map((old) => ({
        epoch: old.epoch,
        key: Buffer.from(old.key).toString('base64url'),
        untilMs: old.untilMs,
      })),
    };
    await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  }
}

function epochZero(key: Uint8Array): MeshKeyEpoch {
  return { epoch: 0, key: Uint8Array.from(key), keyId: keyIdOf(key), rotation: undefined };
}

function rotationFromHex(hex: string, path: string): KeyRotation {
  const rotation = decodeKeyRotation(Uint8Array.from(Buffer.from(hex, 'hex')));
  if (rotation instanceof DecodeError) {
    throw new MeshKeyRingError(`${path}: the current key's rotation record is damaged`, { cause: rotation });
  }
  return rotation;
}

function parseKeyFile(text: string, path: string): KeyFile {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (error) {
    throw new MeshKeyRingError(`${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const candidate = file as Partial<KeyFile>;
  const isKey = (value: unknown): boolean =>
    typeof value === 'string' && Buffer.from(value, 'base64url').length === 32;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.base !== 'string' ||
    typeof candidate.current?.epoch !== 'number' ||
    !isKey(candidate.current.key) ||
    !Array.isArray(candidate.retired) ||
    !candidate.retired.every(
      (old) => typeof old.epoch === 'number' && isKey(old.key) && typeof old.untilMs === 'number',
    )
  ) {
    throw new MeshKeyRingError(`${path} is damaged: move it aside to start again from the config's mesh key`);
  }
  return candidate as KeyFile;
}
