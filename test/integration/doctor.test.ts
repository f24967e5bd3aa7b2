// `nearmesh doctor` as a user runs it: no agent needed, one JSON document with --json, a line per check
// otherwise, exit status 1 exactly when a check failed; a missing adapter and a busy port are named with
// a fix; a port held by this config's own running agent is fine.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkBoard,
  checkClock,
  checkNode,
  formatReport,
  parseCapEff,
  runDoctor,
} from '../../agent/cli/doctor-checks.js';
import { GENERIC_LINUX } from '../../boards/index.js';
import { freePorts, runCli, startAgent, stopAllAgents, temporaryDir } from '../support/agent-process.js';

afterAll(stopAllAgents);

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  fix?: string;
}

interface Report {
  ok: boolean;
  board: { id: string; name: string; model: string | null };
  checks: Check[];
  telemetry: Record<string, unknown>;
}

function writeConfig(dir: string, port: number, ble: string, mqtt = 'listen = false'): string {
  const path = join(dir, 'nearmesh.toml');
  writeFileSync(
    path,
    [
      'name = "doctor-test"',
      `data_dir = ${JSON.stringify(dir)}`,
      '[wifi]',
      `listen = "127.0.0.1:${port}"`,
      'discovery = []',
      '[ble]',
      ble,
      '[mqtt]',
      mqtt,
      '',
    ].join('\n'),
  );
  return path;
}

async function doctor(config: string): Promise<{ code: number | null; report: Report; stderr: string }> {
  const result = await runCli(['doctor', '--json', '--config', config]);
  return { code: result.code, report: JSON.parse(result.stdout) as Report, stderr: result.stderr };
}

function check(report: Report, id: string): Check {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${JSON.stringify(report.checks)}`);
  return found;
}

function listen(port: number): Promise<Server> {
  return new Promise((resolveListen, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveListen(server));
  });
}

describe('nearmesh doctor', () => {
  it('prints every check as JSON, and exits 0 when none failed', async () => {
    const dir = temporaryDir();
    const [port] = await freePorts(1);
    const { code, report, stderr } = await doctor(writeConfig(dir, port!, 'enabled = false'));
    expect(stderr).toBe('');
    expect(report.board).toEqual({
      id: expect.any(String),
      name: expect.any(String),
      model: report.board.model === null ? null : expect.any(String),
    });
    expect(typeof report.telemetry).toBe('object');
    for (const entry of report.checks) {
      expect(entry.id).toMatch(/^[a-z_.]+$/);
      expect(['ok', 'warn', 'fail']).toContain(entry.status);
      expect(typeof entry.message).toBe('string');
      if (entry.status !== 'ok') expect(entry.fix).toEqual(expect.any(String));
    }
    expect(report.checks.map((entry) => entry.id)).toEqual(
      expect.arrayContaining([
        'config',
        'node',
        'board',
        'clock',
        'data_dir',
        'disk',
        'mesh',
        'wifi.port',
        'mqtt.port',
        'ble.adapters',
      ]),
    );
    // A fresh device: no mesh yet, and the next step.
    expect(check(report, 'mesh')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('no mesh yet'),
      fix: expect.stringContaining('nearmesh join CODE'),
    });
    expect(check(report, 'mqtt.port')).toMatchObject({
      status: 'ok',
      message: 'MQTT off ([mqtt] listen = false)',
    });
    expect(check(report, 'config')).toMatchObject({ status: 'ok', message: join(dir, 'nearmesh.toml') });
    expect(check(report, 'node').status).toBe('ok');
    expect(check(report, 'data_dir')).toMatchObject({ status: 'ok', message: `${dir} is writable` });
    expect(check(report, 'wifi.port')).toMatchObject({ status: 'ok', message: `127.0.0.1:${port} is free` });
    expect(check(report, 'ble.adapters')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/BLE off/),
    });
    // With BLE off, bluetoothd and capabilities do not matter and are not checked.
    expect(report.checks.some((entry) => entry.id === 'capabilities')).toBe(false);
    expect(report.ok).toBe(report.checks.every((entry) => entry.status !== 'fail'));
    expect(code).toBe(report.ok ? 0 : 1);
  });

  it('fails on a missing adapter and busy ports, naming who holds them, with a fix for each', async () => {
    const dir = temporaryDir();
    const [port, mqttPort] = await freePorts(2);
    const busy = await listen(port!);
    const busyMqtt = await listen(mqttPort!);
    try {
      const config = writeConfig(
        dir,
        port!,
        `enabled = true\nperipheral = "uart:${dir}/no-such-tty"\ncentral = "hci99"`,
        `listen = "127.0.0.1:${mqttPort}"`,
      );
      const { code, report } = await doctor(config);
      expect(code).toBe(1);
      expect(report.ok).toBe(false);
      const adapters = check(report, 'ble.adapters');
      expect(adapters.status).toBe('fail');
      expect(adapters.message).toContain(`uart:${dir}/no-such-tty (peripheral)`);
      expect(adapters.message).toContain('hci99 (central): no such adapter');
      expect(adapters.fix).toMatch(/\[ble\] central/);
      expect(adapters.fix).toMatch(/plug the controller in/);
      const wifi = check(report, 'wifi.port');
      expect(wifi).toMatchObject({
        status: 'fail',
        message: `127.0.0.1:${port} is in use by node (pid ${process.pid})`,
        fix: 'stop it, or set [wifi] listen to a free port',
      });
      expect(check(report, 'mqtt.port')).toMatchObject({
        status: 'fail',
        message: `127.0.0.1:${mqttPort} is in use by node (pid ${process.pid})`,
        fix: 'stop it, or set [mqtt] listen to a free port',
      });
      expect(check(report, 'bluetoothd').status).not.toBe('fail');
      expect(['ok', 'fail']).toContain(check(report, 'capabilities').status);

      // The same as text: one line per check, each starting with its status; the fix on the same line.
      const text = await runCli(['doctor', '--config', config]);
      expect(text.code).toBe(1);
      const lines = text.stdout.trim().split('\n');
      expect(lines).toHaveLength(report.checks.length + 1);
      for (const line of lines.slice(0, -1)) expect(line).toMatch(/^(ok|warn|fail) {2}/);
      expect(lines.find((line) => line.includes('wifi.port'))).toMatch(/^fail .*in use.* — fix: /);
      expect(lines.at(-1)).toMatch(/^\d+ failures?, \d+ warnings?$/);
    } finally {
      await new Promise((resolveClose) => busy.close(resolveClose));
      await new Promise((resolveClose) => busyMqtt.close(resolveClose));
    }
  });

  it('only warns about a missing adapter when BLE is "auto"', async () => {
    const dir = temporaryDir();
    const [port] = await freePorts(1);
    const { report } = await doctor(
      writeConfig(dir, port!, 'enabled = "auto"\nperipheral = "hci99"\ncentral = "hci99"'),
    );
    expect(check(report, 'ble.adapters')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('hci99 (peripheral, central): no such adapter'),
      fix: expect.stringContaining('[ble] peripheral/central'),
    });
  });

  it('reports a bad config as a failed check and still checks the rest it can', async () => {
    const dir = temporaryDir();
    const config = join(dir, 'bad.toml');
    writeFileSync(config, '[wifi]\nlisten = "0.0.0.0"\n');
    const { code, report } = await doctor(config);
    expect(code).toBe(1);
    expect(check(report, 'config')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/line 2.*wifi\.listen/),
    });
    expect(check(report, 'node').status).toBe('ok');
    expect(check(report, 'board').status).not.toBe('fail');
    expect(report.checks.some((entry) => entry.id === 'wifi.port')).toBe(false);
  });

  it('checks that each [[resolvers]] program can run: a missing one fails with its name', async () => {
    const dir = temporaryDir();
    const [port] = (await freePorts(1)) as [number];
    const script = join(dir, 'site-peers.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o755);
    const base = writeConfig(dir, port, 'enabled = false');
    const table = (exec: string, name: string) =>
      `[[resolvers]]\nexec = [${JSON.stringify(exec)}]\nname = "${name}"\n`;
    writeFileSync(base, `${readFileSync(base, 'utf8')}${table(script, 'site')}${table('sh', 'on-path')}`);
    expect(check((await doctor(base)).report, 'resolvers')).toMatchObject({
      status: 'ok',
      message: 'programs of site, on-path can run',
    });
    writeFileSync(base, `${readFileSync(base, 'utf8')}${table(join(dir, 'gone.sh'), 'gone')}`);
    const { code, report } = await doctor(base);
    expect(code).toBe(1);
    expect(check(report, 'resolvers')).toMatchObject({
      status: 'fail',
      message: `gone: ${join(dir, 'gone.sh')} is missing or not executable`,
      fix: expect.stringContaining('[[resolvers]] exec'),
    });
  });

  it("counts ports held by this config's running agent as fine", async () => {
    const [port, mqttPort] = await freePorts(2);
    const agent = await startAgent({
      name: 'doctor-agent',
      meshKey: 'A'.repeat(43),
      port: port!,
      mqtt: [`listen = "127.0.0.1:${mqttPort}"`],
    });
    const { report } = await doctor(agent.configPath);
    expect(check(report, 'wifi.port')).toMatchObject({
      status: 'ok',
      message: `127.0.0.1:${port} is in use by the running agent (pid ${agent.child.pid})`,
    });
    expect(check(report, 'mqtt.port')).toMatchObject({
      status: 'ok',
      message: `127.0.0.1:${mqttPort} is in use by the running agent (pid ${agent.child.pid})`,
    });
    expect(check(report, 'mesh')).toMatchObject({
      status: 'ok',
      message: 'mesh key from the config (mesh_key)',
    });
  });
});

describe('doctor checks on a fixture root', () => {
  it('sees the board, bluetoothd on the same adapter, missing capabilities, heat and under-voltage', async () => {
    const dir = temporaryDir();
    const root = temporaryDir('nearmesh-doctor-root-');
    const files: Record<string, string> = {
      'proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.5\0',
      'proc/612/comm': 'bluetoothd\n',
      'proc/613/comm': 'systemd-journal\n',
      // CAP_NET_RAW (bit 13) without CAP_NET_ADMIN (bit 12).
      'proc/self/status': 'Name:\tnode\nCapEff:\t0000000000002000\n',
      'sys/class/bluetooth/hci0/uevent': '',
      'sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n',
      'sys/class/thermal/thermal_zone0/temp': '83500\n',
      'usr/bin/vcgencmd': '#!/bin/sh\necho throttled=0x50005\n',
    };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    chmodSync(join(root, 'usr/bin/vcgencmd'), 0o755);
    const [port] = await freePorts(1);
    const report = await runDoctor({
      configPath: writeConfig(dir, port!, 'enabled = true'),
      root,
      now: new Date('1970-01-01T00:00:10Z'),
      nodeVersion: '18.19.0',
    });
    expect(report.board).toEqual({
      id: 'rpi-4b',
      name: 'Raspberry Pi 4 Model B',
      model: 'Raspberry Pi 4 Model B Rev 1.5',
    });
    const byId = Object.fromEntries(report.checks.map((entry) => [entry.id, entry]));
    expect(byId.board?.status).toBe('ok');
    expect(byId.node).toMatchObject({ status: 'fail', fix: expect.stringContaining('Node.js 20') });
    expect(byId.clock).toMatchObject({ status: 'warn', fix: expect.stringContaining('NTP') });
    expect(byId['ble.adapters']).toMatchObject({
      status: 'ok',
      message: 'present: hci0 (peripheral, central)',
    });
    expect(byId.bluetoothd).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('pid 612'),
      fix: expect.stringContaining('systemctl disable --now bluetooth'),
    });
    expect(byId.capabilities).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('lacks CAP_NET_ADMIN'),
      fix: expect.stringContaining('AmbientCapabilities'),
    });
    expect(byId.temperature).toMatchObject({ status: 'warn', message: expect.stringContaining('83.5 °C') });
    expect(byId.power).toMatchObject({ status: 'fail', message: expect.stringContaining('0x50005') });
    expect(byId.throttling?.status).toBe('warn');
    expect(report.ok).toBe(false);
    expect(formatReport(report).split('\n')[0]).toMatch(/^ok {4}config/);
  });

  it('parses CapEff and knows an unknown Pi from a non-Pi', () => {
    expect(parseCapEff('CapInh:\t0\nCapEff:\t000001ffffffffff\n')).toBe(0x1ffffffffffn);
    expect(parseCapEff('Name: x\n')).toBeNull();
    expect(
      checkBoard({
        profile: GENERIC_LINUX,
        model: 'Raspberry Pi 3 Model B Rev 1.2',
        source: '/proc/device-tree/model',
      }).status,
    ).toBe('warn');
    expect(
      checkBoard({ profile: GENERIC_LINUX, model: 'QEMU Virtual Machine', source: '/proc/device-tree/model' })
        .status,
    ).toBe('ok');
    expect(checkBoard({ profile: GENERIC_LINUX, model: null, source: null }).status).toBe('ok');
    expect(checkNode('20.0.0').status).toBe('ok');
    expect(checkNode('v22.3.1').status).toBe('ok');
    expect(checkClock(new Date('2024-01-01T00:00:00Z')).status).toBe('ok');
  });
});
