// What a restart resumes sends from: one small JSON file per transfer, `<stateDir>/<id>.json` (id, peer,
// path, name, size, mtime), written atomically when the transfer starts and removed when it ends for
// good. A file that does not say all of that is ignored, as if it were not there.
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { mkdirDurable } from '../../core/durable-fs.js';
import { fileNameProblem } from '../../protocol/file-name.js';
import { transferIdFromHex } from '../../protocol/transfer.js';

/**
 * What survives a restart: enough to re-OFFER and to notice the file changed meanwhile. No hash: a resume
 * after a restart hashes again what the receiver holds, from the file.
 */
export interface PersistedSend {
  version: 1;
  transferId: string;
  peer: string;
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export class SenderStore {
  readonly #dir: string;

  /** `dir` is created when the first state is saved. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  async save(state: PersistedSend): Promise<void> {
    await mkdirDurable(this.#dir);
    await writeFileAtomic(this.#path(state.transferId), `${JSON.stringify(state)}\n`, 0o600);
  }

  /** The state of `transferId`, or undefined when there is none (or it is not a valid one). */
  async load(transferId: string): Promise<PersistedSend | undefined> {
    if (transferIdFromHex(transferId) === null) return undefined;
    try {
      const value = JSON.parse(await readFile(this.#path(transferId), 'utf8')) as Partial<PersistedSend>;
      const valid =
        value.version === 1 &&
        value.transferId === transferId &&
        typeof value.peer === 'string' &&
        typeof value.path === 'string' &&
        typeof value.name === 'string' &&
        fileNameProblem(value.name) === null &&
        Number.isSafeInteger(value.size) &&
        (value.size as number) >= 0 &&
        typeof value.mtimeMs === 'number';
      if (!valid) return undefined;
      const { peer, path, name, size, mtimeMs } = value as PersistedSend;
      return { version: 1, transferId, peer, path, name, size, mtimeMs };
    } catch {
      return undefined;
    }
  }

  /** Every valid state in the directory. */
  async list(): Promise<PersistedSend[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const states: PersistedSend[] = [];
    for (const name of names) {
      const match = /^([0-9a-f]{32})\.json$/.exec(name);
      if (match === null) continue;
      const state = await this.load(match[1] as string);
      if (state !== undefined) states.push(state);
    }
    return states;
  }

  /** Removes the state of `transferId`, if there is one. */
  async delete(transferId: string): Promise<void> {
    await unlink(this.#path(transferId)).catch(() => {});
  }

  #path(transferId: string): string {
    return join(this.#dir, `${transferId}.json`);
  }
}
