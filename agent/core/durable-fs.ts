// Making file-system changes survive a power cut, not only a crash: a new name (a created file, a rename, a
// made directory) is durable only once its directory is fsynced (POSIX; ext4 on an SD card reorders
// otherwise). The power-cut tests (scripts/powercut, test/system/powercut-*.test.ts) drop what these skip.
import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Some file systems cannot fsync a directory (EINVAL, EISDIR on a few FUSE and network mounts): nothing to do there. */
function isUnsupported(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EISDIR' || code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

/** Makes the entries of `directory` (files created, renamed or removed in it) durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } catch (error) {
    if (!isUnsupported(error)) throw error;
  } finally {
    await handle.close();
  }
}

/** mkdir -p whose new directories survive a power cut: each one's parent is fsynced once it exists. */
export async function mkdirDurable(path: string, mode = 0o700): Promise<void> {
  const first = await mkdir(path, { recursive: true, mode });
  if (first === undefined) return; // it was there already
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    await syncDirectory(dirname(dir));
    if (dir === resolve(first) || dirname(dir) === dir) break;
  }
}
