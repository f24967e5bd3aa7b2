// Living under systemd: the unit file passes `systemd-analyze verify`, the installer is idempotent and its
// uninstaller keeps (or purges) config and state, and a real agent tells a fake NOTIFY_SOCKET READY=1,
// watchdog pings and STOPPING=1 (through the real systemd-notify), with journald priorities on its log lines.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { freePorts, startAgent, stopAllAgents } from '../support/agent-process.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const REPO = resolve(import.meta.dirname, '../..');
const PYTHON = '/usr/bin/python3';
/** A datagram receiver that, unlike systemd, only prints: recv() without ancillary data closes the
 * barrier fd systemd-notify passes, so systemd-notify does not wait for it. */
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)
`;

function whyUnavailable(): string | undefined {
  for (const tool of ['systemd-analyze', 'systemd-notify']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `needs ${tool} (apt-get install systemd)`;
  }
  if (!existsSync(PYTHON)) return `needs ${PYTHON} for the fake notify socket`;
  return undefined;
}

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-systemd-'));
  temporary.push(dir);
  return dir;
}

afterAll(async () => {
  await stopAllAgents();
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env } });
}

describeWhenAvailable('nearmesh under systemd', whyUnavailable(), () => {
  it('has a unit file that systemd-analyze verifies without a complaint', () => {
    const dir = tempDir();
    const installed = run(join(REPO, 'scripts/install.sh'), ['--prefix', REPO, '--no-start'], {
      NEARMESH_ROOT: dir,
      NEARMESH_NO_SYSTEM: '1',
    });
    expect(installed.status, installed.stderr).toBe(0);
    const unit = join(dir, 'etc/systemd/system/nearmesh.service');
    const verified = run('systemd-analyze', ['verify', '--man=no', unit]);
    expect(verified.status).toBe(0);
    expect(verified.stderr.trim()).toBe('');
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^WatchdogSec=\d+$/m);
    expect(text).toMatch(/^CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN$/m);
    expect(text).not.toContain('@');
  });

  it('installs idempotently, keeps the config on a reinstall, and uninstalls keeping or purging state', () => {
    const root = tempDir();
    const env = { NEARMESH_ROOT: root, NEARMESH_NO_SYSTEM: '1' };
    const install = () => run(join(REPO, 'scripts/install.sh'), ['--no-start'], env);
    const first = install();
    expect(first.status, first.stderr).toBe(0);
    const config = join(root, 'etc/nearmesh/nearmesh.toml');
    const written = readFileSync(config, 'utf8');
    // No mesh key: the device joins a mesh with a code, and the installer says how.
    expect(written).not.toMatch(/^mesh_key/m);
    expect(first.stdout).toContain('join CODE');
    expect(written).toContain('socket = "/run/nearmesh/control.sock"');
    const second = install();
    expect(second.status, second.stderr).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe(written);
    // Runtime dependencies only: the test runner is not shipped.
    const modules = readdirSync(join(root, 'opt/nearmesh/node_modules'));
    expect(modules).toContain('pino');
    expect(modules).not.toContain('vitest');
    const help = run(process.execPath, [join(root, 'opt/nearmesh/dist/agent/cli/main.js'), '--help']);
    expect(help.status).toBe(0);

    const uninstall = (args: string[]) => run(join(REPO, 'scripts/uninstall.sh'), args, env);
    expect(uninstall([]).status).toBe(0);
    expect(existsSync(join(root, 'opt/nearmesh'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/nearmesh.service'))).toBe(false);
    expect(readFileSync(config, 'utf8')).toBe(written);
    expect(uninstall(['--purge']).status).toBe(0);
    expect(existsSync(config)).toBe(false);
  });

  it('tells the notify socket READY=1, pings the watchdog, says STOPPING=1, and logs with priorities', async () => {
    const dir = tempDir();
    const socket = join(dir, 'notify');
    const receiver: ChildProcess = spawn(PYTHON, ['-c', RECEIVER, socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let received = '';
    receiver.stdout?.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    try {
      await until('the fake notify socket', () => received.includes('ready'), {
        timeoutMs: 5_000,
        intervalMs: 20,
      });
      const [port] = await freePorts(1);
      const agent = await startAgent({
        name: 'under-systemd',
        meshKey: generateMeshKey(),
        port: port!,
        env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '300000', JOURNAL_STREAM: '8:12345' },
      });
      await until('READY=1', () => received.includes('READY=1'), { timeoutMs: 10_000, intervalMs: 20 });
      expect(received).toContain(`MAINPID=${agent.child.pid}`);
      expect(received).toMatch(/STATUS=serving as under-systemd \([0-9a-f]{16}\)/);
      // WATCHDOG_USEC 0.3 s: a ping every 0.1 s.
      await until('watchdog pings', () => (received.match(/WATCHDOG=1/g) ?? []).length >= 5, {
        timeoutMs: 5_000,
        intervalMs: 50,
      });
      expect(await agent.stop('SIGTERM')).toBe(0);
      await until('STOPPING=1', () => received.includes('STOPPING=1'), { timeoutMs: 5_000, intervalMs: 20 });
      // Info lines carry journald priority 6, warnings 4 ("<N>" before the JSON).
      expect(agent.output).toMatch(/^<6>\{"level":30,.*"msg":"agent started"/m);
    } finally {
      receiver.kill('SIGKILL');
    }
  }, 30_000);
});
