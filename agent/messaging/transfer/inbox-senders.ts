// Who pushed each file still in the inbox, so that a peer's quota counts the files it left there. The inbox
// keeps nothing about a finished file (its sidecar goes when the file gets its name), so this ledger does:
// file name → peer, size and inode, in one JSON file beside the agent's other state (not in the inbox, where
// people and apps look), rewritten atomically when a file arrives or entries go. An entry whose file went
// (moved, deleted, or replaced: another inode or size) is dropped the next time it is counted; a ledger of another
// inbox directory, or one that cannot be read, starts empty. It holds at most what the receiver admits
// (maxInboxFiles, parts in progress included): this module only records.
import { lstat, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';

export interface SenderEntry {
  from: string;
  size: number;
  /** The file's inode (as a decimal string: it may not fit a double), so a replaced file is not counted. */
  ino: string;
}

/** What one peer has in the inbox. */
export interface InboxShare {
  files: number;
  bytes: number;
}

const LEDGER_VERSION = 1;

interface LedgerFile {
  version: typeof LEDGER_VERSION;
  inbox: string;
  /** Rows, not an object keyed by name: a file may be called "__proto__". */
  files: [name: string, from: string, size: number, ino: string][];
}

export class InboxSenders {
  readonly #inboxDir: string;
  readonly #file: string | undefined;
  #entries: Promise<Map<string, SenderEntry>> | undefined;
  #saving: Promise<void> = Promise.resolve();

  /** Without `file` the ledger lives in memory only (a restart forgets who pushed what). */
  constructor(inboxDir: string, file?: string) {
    this.#inboxDir = inboxDir;
    this.#file = file;
  }

  /** Files recorded (some may have gone since they were last counted). */
  async size(): Promise<number> {
    return (await this.#load()).size;
  }

  /** The files `peer` pushed that are still in the inbox. */
  async shareOf(peer: string): Promise<InboxShare> {
    const entries = await this.#load();
    const share: InboxShare = { files: 0, bytes: 0 };
    let dropped = false;
    for (const [name, entry] of entries) {
      if (entry.from !== peer) continue;
      if (await this.#stillThere(name, entry)) {
        share.files += 1;
        share.bytes += entry.size;
      } else {
        entries.delete(name);
        dropped = true;
      }
    }
    // The ledger in memory is what counts; a write that failed is made good by the next one.
    if (dropped) await this.#save().catch(() => {});
    return share;
  }

  /** Drops the entries of every file that went; returns how many are left. */
  async prune(): Promise<number> {
    const entries = await this.#load();
    const before = entries.size;
    for (const [name, entry] of entries) {
      if (!(await this.#stillThere(name, entry))) entries.delete(name);
    }
    if (entries.size !== before) await this.#save().catch(() => {});
    return entries.size;
  }

  /** Records that `from` pushed the file now at `path` (in the inbox), of `size` bytes. */
  async add(path: string, from: string, size: number): Promise<void> {
    const entries = await this.#load();
    const { ino } = await lstat(path, { bigint: true });
    entries.set(basename(path), { from, size, ino: ino.toString() });
    await this.#save();
  }

  async #stillThere(name: string, entry: SenderEntry): Promise<boolean> {
    try {
      const stats = await lstat(join(this.#inboxDir, name), { bigint: true });
      // A replacement may get the freed inode again; it would also have to be exactly as long.
      return stats.isFile() && stats.ino.toString() === entry.ino && stats.size === BigInt(entry.size);
    } catch {
      return false;
    }
  }

  #load(): Promise<Map<string, SenderEntry>> {
    this.#entries ??= this.#read();
    return this.#entries;
  }

  async #read(): Promise<Map<string, SenderEntry>> {
    const entries = new Map<string, SenderEntry>();
    if (this.#file === undefined) return entries;
    let value: Partial<LedgerFile>;
    try {
      value = JSON.parse(await readFile(this.#file, 'utf8')) as Partial<LedgerFile>;
    } catch {
      return entries;
    }
    if (value?.version !== LEDGER_VERSION || value.inbox !== this.#inboxDir) return entries;
    if (!Array.isArray(value.files)) return entries;
    for (const row of value.files as unknown[]) {
      if (!Array.isArray(row)) continue;
      const [name, from, size, ino] = row as unknown[];
      if (
        typeof name === 'string' &&
        typeof from === 'string' &&
        typeof size === 'number' &&
        Number.isSafeInteger(size) &&
        size >= 0 &&
        typeof ino === 'string'
      ) {
        entries.set(name, { from, size, ino });
      }
    }
    return entries;
  }

  /** Writes the ledger as it is when the write starts; writes go one after another, so the last one wins. */
  #save(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return Promise.resolve();
    const write = async () => {
      const entries = await this.#load();
      const files: LedgerFile['files'] = [...entries].map(([name, { from, size, ino }]) => [
        name,
        from,
        size,
        ino,
      ]);
      const ledger: LedgerFile = { version: LEDGER_VERSION, inbox: this.#inboxDir, files };
      await writeFileAtomic(file, `${JSON.stringify(ledger)}\n`, 0o600);
    };
    const saved = this.#saving.then(write, write);
    this.#saving = saved.catch(() => {});
    return saved;
  }
}
