// Who listens on a TCP port, from /proc: the socket's inode in /proc/net/tcp{,6}, then the process with a
// file descriptor on it. For error messages ("... in use by mosquitto (PID 812)"); best effort: without
// permission to read other users' /proc/PID/fd it finds nothing, and says nothing.
import { readdir, readFile, readlink } from 'node:fs/promises';

const LISTEN_STATE = '0A';
/** Processes scanned at most: an error message is not worth a long walk through /proc. */
const MAX_PROCESSES = 4096;

export interface PortHolder {
  pid: number;
  /** The process name (/proc/PID/comm). */
  name: string;
}

/** The process listening on `port` (TCP, IPv4 or IPv6), or undefined when it cannot be told. */
export async function findPortHolder(port: number, proc = '/proc'): Promise<PortHolder | undefined> {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    const text = await readFile(`${proc}/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== LISTEN_STATE) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && fields[9] !== undefined)
        inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((entry) => /^\d+$/.test(entry));
  for (const pid of pids.slice(0, MAX_PROCESSES)) {
    const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        const name = (await readFile(`${proc}/${pid}/comm`, 'utf8').catch(() => '?')).trim();
        return { pid: Number(pid), name };
      }
    }
  }
  return undefined;
}
