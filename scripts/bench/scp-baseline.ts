// Row 16's baseline: OpenSSH's scp to an sshd this module starts on 127.0.0.1 (a free port, throwaway ed25519
// host and user keys in a temp dir, logging in as the user running the bench), each copy timed spawn → exit.

import { spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { basename, delimiter, join } from 'node:path';
import type { Scope } from './agent-pair.js';
import { isRunning, startChild, stopChild } from './bench-child.js';
import { processCpuMs, reapedChildrenCpuMs } from './cpu-usage.js';
import { freePorts } from './loopback-agents.js';
import { elapsedMs, sleep, withTimeout } from './timing.js';

const SSHD = '/usr/sbin/sshd';
/** sshd started as root insists on its privilege-separation chroot (Debian's unit creates it at boot). */
const PRIVSEP_DIR = '/run/sshd';
const READY_TIMEOUT_MS = 10_000;
const READY_POLL_MS = 50;
const PROBE_TIMEOUT_MS = 1_000;
/**
 * `-s`: the SFTP protocol, Debian 12's default, said out loud so the footnote stays true (here it was
 * faster than the legacy `-O`). `-F /dev/null`: no ssh_config of the machine or the user changes the run.
 */
const SCP_OPTIONS = [
  '-q',
  '-s',
  '-F',
  '/dev/null',
  '-o',
  'Ciphers=chacha20-poly1305@openssh.com',
  '-o',
  'BatchMode=yes',
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
] as const;

/** A running sshd and what scp needs to reach it. */
export interface ScpServer {
  readonly pid: number;
  readonly port: number;
  readonly userKey: string;
  /** Where copies land; each is removed once its size is checked. */
  readonly destDir: string;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Why the scp baseline cannot run here ("no sshd": `apt-get install openssh-server`), or undefined. */
function whyNoScp(): string | undefined {
  if (!existsSync(SSHD)) return 'no sshd';
  const missing = ['scp', 'ssh-keygen'].find((tool) => !onPath(tool));
  return missing === undefined ? undefined : `no ${missing}`;
}

function generateKey(path: string): void {
  const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path], {
    encoding: 'utf8',
  });
  if (made.status !== 0) throw new Error(`ssh-keygen: ${made.stderr.trim()}`);
}

/** Whatever listens on `port` sends an SSH version banner. */
function answersSsh(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const settle = (answered: boolean): void => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => settle(false));
    socket.once('data', (chunk: Buffer) => settle(chunk.toString('latin1').startsWith('SSH-')));
    socket.once('error', () => settle(false));
  });
}

function sshdConfig(port: number, hostKey: string, authorizedKeys: string): string {
  return [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'AuthenticationMethods publickey',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // The keys live under the world-writable temp dir, which StrictModes refuses.
    'StrictModes no',
    // PAM wants root (and opens a login session per copy); without it a non-root sshd logs in its own user.
    'UsePAM no',
    // CI runs as root.
    'PermitRootLogin prohibit-password',
    'UseDNS no',
    'PidFile none',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

/**
 * Starts sshd (as whoever runs the bench) and waits until it answers; the scope stops it by its pid. Without
 * sshd, scp or ssh-keygen here, the reason instead.
 */
export async function startScpServer(scope: Scope): Promise<ScpServer | string> {
  const missing = whyNoScp();
  if (missing !== undefined) return missing;
  const dir = scope.temporaryDir('nearmesh-bench-sshd-');
  const [hostKey, userKey] = [join(dir, 'host_key'), join(dir, 'user_key')];
  generateKey(hostKey);
  generateKey(userKey);
  const authorizedKeys = join(dir, 'authorized_keys');
  copyFileSync(`${userKey}.pub`, authorizedKeys);
  const [port = 0] = await freePorts(1);
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, sshdConfig(port, hostKey, authorizedKeys));
  if (process.getuid?.() === 0 && !existsSync(PRIVSEP_DIR)) {
    mkdirSync(PRIVSEP_DIR, { mode: 0o755 });
    scope.defer(() => rmdirSync(PRIVSEP_DIR));
  }
  const sshd = startChild(SSHD, ['-D', '-e', '-f', configPath]);
  scope.defer(() => stopChild(sshd));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answersSsh(port))) {
    if (!isRunning(sshd)) throw new Error(`sshd exited: ${sshd.output.trim().slice(-300)}`);
    if (Date.now() > deadline)
      throw new Error(`sshd not answering on port ${port} within ${READY_TIMEOUT_MS} ms`);
    await sleep(READY_POLL_MS);
  }
  const pid = sshd.child.pid;
  if (pid === undefined) throw new Error('sshd has no pid');
  return { pid, port, userKey, destDir: scope.temporaryDir('nearmesh-bench-scp-') };
}

/** sshd's CPU so far: the listener's, and its sessions' once it has waited for them (just after each copy). */
export function sshdCpuMs(server: ScpServer): number {
  return processCpuMs(server.pid) + reapedChildrenCpuMs(server.pid);
}

/** One `scp file 127.0.0.1:<destDir>`: milliseconds from its spawn to its exit, once the copy's size is right. */
export async function timedScp(
  server: ScpServer,
  file: string,
  bytes: number,
  timeoutMs: number,
): Promise<number> {
  const args = [
    ...SCP_OPTIONS,
    '-i',
    server.userKey,
    '-P',
    String(server.port),
    file,
    `127.0.0.1:${server.destDir}`,
  ];
  const startNs = process.hrtime.bigint();
  const scp = startChild('scp', args);
  let ms: number;
  try {
    await withTimeout(scp.exited, timeoutMs, 'scp');
    ms = elapsedMs(startNs);
  } finally {
    await stopChild(scp);
  }
  if (scp.child.exitCode !== 0)
    throw new Error(`scp exited ${scp.child.exitCode}: ${scp.output.trim().slice(-300)}`);
  const copy = join(server.destDir, basename(file));
  const size = statSync(copy).size;
  rmSync(copy);
  if (size !== bytes) throw new Error(`scp copied ${size} of ${bytes} bytes`);
  return ms;
}
