// Joining over BLE alone: two agents with Wi-Fi off on emulated controllers (btvirt), one in a mesh and one
// fresh. `invite` sets the inviting flag of the member's advertisement; `join CODE` on the fresh one dials the
// inviting advertiser, runs the exchange over GATT, takes the key, and the two link over BLE and exchange a
// message.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InviteResult, JoinResult } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { type BleEmulator, startEmulator } from '../../scripts/ble-emulator/emulator.js';
import {
  type AgentProcess,
  expectDelivered,
  freePorts,
  startAgent,
  stopAllAgents,
  untilLinked,
} from '../support/agent-process.js';
import { describeWithBleEmulator, stopAllChildren } from '../support/ble-emulator.js';

describeWithBleEmulator('a fresh device joins a mesh over BLE only (emulated controllers)', () => {
  let emulator: BleEmulator;
  let alpha: AgentProcess;
  let bravo: AgentProcess;

  beforeAll(async () => {
    emulator = await startEmulator({ controllers: 4 });
    const ports = await freePorts(2);
    const ble = (index: number) => ({
      peripheral: `uart:${emulator.ptys[2 * index]}`,
      central: `uart:${emulator.ptys[2 * index + 1]}`,
    });
    [alpha, bravo] = await Promise.all([
      startAgent({
        name: 'alpha',
        meshKey: generateMeshKey(),
        port: ports[0] as number,
        wifi: false,
        ble: ble(0),
      }),
      startAgent({ name: 'bravo', meshKey: undefined, port: ports[1] as number, wifi: false, ble: ble(1) }),
    ]);
  }, 30_000);

  afterAll(async () => {
    await stopAllAgents();
    await stopAllChildren();
    await emulator?.stop();
  });

  it('finds the inviting advertiser, takes the key over GATT, links over BLE and exchanges a message', async () => {
    const opened = await alpha.json<InviteResult>(['invite', '--no-wait']);
    expect(opened.state).toBe('open');
    const joined = await bravo.cli(['join', opened.code, '--json', '--timeout', '40s'], 50_000);
    expect(joined.stderr).toBe('');
    expect(JSON.parse(joined.stdout) as JoinResult).toMatchObject({ inviter: { name: 'alpha' } });

    await untilLinked(bravo, alpha, { medium: 'ble', timeoutMs: 40_000 });
    await expectDelivered(bravo, alpha, 'joined over BLE');
    expect(await alpha.json<InviteResult>(['invitation'])).toMatchObject({
      state: 'joined',
      joined: { name: 'bravo' },
    });
  }, 120_000);

  it('stops cleanly on Ctrl-C with BLE on: "agent stopped", exit 0, no control socket left', async () => {
    // Both BLE libraries add a SIGINT listener that exits with 1 before the agent has stopped.
    expect(await bravo.stop('SIGINT')).toBe(0);
    expect(bravo.output).toContain('"msg":"agent stopped"');
    expect(existsSync(bravo.socketPath)).toBe(false);
  }, 30_000);
});
