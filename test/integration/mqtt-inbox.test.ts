// MQTT apps with persistent sessions as consumers of the app inbox, with real clients: mosquitto_sub
// (clean session off) and paho-mqtt (clean_session=False) are away while 100 reliable messages arrive,
// the receiving agent restarts meanwhile, and each gets all 100 once, in order, when it comes back.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { AgentStatus, InboxReport } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type AgentSpec, freePorts, startAgent, stopAllAgents } from '../support/agent-process.js';
import { ANONYMOUS_MAY_DO_ANYTHING, mqttPort } from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const PAHO = resolve(import.meta.dirname, 'children/paho-persistent.py');
const COUNT = 100;

const missing = (() => {
  if (spawnSync('sh', ['-c', 'command -v mosquitto_sub']).status !== 0)
    return 'mosquitto_sub is not installed';
  if (spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt.client']).status !== 0)
    return 'python3-paho-mqtt is not installed';
  return undefined;
})();

/** Runs a client to its end; its standard output, one payload a line. */
function runClient(command: string, args: string[]): Promise<string[]> {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} failed: ${error.message} ${stderr}`));
      else resolveRun(stdout.split('\n').filter((line) => line !== ''));
    });
  });
}

describeWhenAvailable('the app inbox through MQTT persistent sessions', missing, () => {
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) child.kill();
    await stopAllAgents();
  });

  it('mosquitto_sub and paho, away while 100 messages arrive and the agent restarts, each get all 100 in order', async () => {
    const meshKey = generateMeshKey();
    const [senderPort, receiverPort] = (await freePorts(2)) as [number, number];
    const sender = await startAgent({
      name: 'ps-sender',
      meshKey,
      port: senderPort,
      peers: [`127.0.0.1:${receiverPort}`],
    });
    const receiverSpec: AgentSpec = {
      name: 'ps-receiver',
      meshKey,
      port: receiverPort,
      peers: [`127.0.0.1:${senderPort}`],
      mqtt: ['listen = "127.0.0.1:0"', ANONYMOUS_MAY_DO_ANYTHING],
    };
    let receiver = await startAgent(receiverSpec);
    const receiverId = (await receiver.json<{ id: string }>(['id'])).id;
    await until('linked', async () =>
      (await sender.json<PeerInfo[]>(['peers'])).some(
        (row) => row.id === receiverId && row.state === 'connected',
      ),
    );
    const mosquittoArgs = (port: number) => [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-i',
      'ha-mosquitto',
      '-c',
      '-q',
      '1',
      '-t',
      'nearmesh/inbox/#',
    ];

    // Both subscribe once with a persistent session, then go away.
    let port = await mqttPort(receiver);
    await runClient('mosquitto_sub', [...mosquittoArgs(port), '-E']);
    await runClient('/usr/bin/python3', [PAHO, String(port), 'ha-paho', '0']);
    const consumers = (await receiver.json<InboxReport>(['inbox'])).consumer_list.map((row) => row.name);
    expect(consumers).toEqual(['mqtt:ha-mosquitto', 'mqtt:ha-paho']);

    const lines = Array.from({ length: COUNT }, (_, i) => `ps-${i}`);
    const sent = await sender.cli(
      ['send', receiverId, '-', '--lines', '--no-wait'],
      20_000,
      Buffer.from(`${lines.join('\n')}\n`),
    );
    expect(sent.code).toBe(0);
    await until(
      "the sender's queue to empty",
      async () => (await sender.json<AgentStatus>(['status'])).queued.messages === 0,
    );
    expect((await receiver.json<InboxReport>(['inbox'])).messages).toBe(COUNT);

    await receiver.stop('SIGTERM');
    receiver = await startAgent({ ...receiverSpec, dir: receiver.dir });
    port = await mqttPort(receiver);
    // mosquitto_sub runs until it has acknowledged them all (with -C it would exit before its last PUBACKs
    // went, and get those again next time: at least once), paho disconnects cleanly after 100.
    const mosquitto = spawn('mosquitto_sub', mosquittoArgs(port), { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(mosquitto);
    let viaMosquitto = '';
    mosquitto.stdout.on('data', (chunk: Buffer) => {
      viaMosquitto += chunk.toString();
    });
    const viaPaho = await runClient('/usr/bin/python3', [PAHO, String(port), 'ha-paho', String(COUNT)]);
    expect(viaPaho).toEqual(lines);
    await until('mosquitto_sub to have taken all 100', async () => {
      const row = (await receiver.json<InboxReport>(['inbox'])).consumer_list.find(
        (consumer) => consumer.name === 'mqtt:ha-mosquitto',
      );
      return row?.waiting === 0;
    });
    mosquitto.kill();
    expect(viaMosquitto.split('\n').filter((line) => line !== '')).toEqual(lines);
    // Both took them all: nothing waits any more.
    let report: InboxReport | undefined;
    await until(
      () => `the inbox to empty: ${JSON.stringify(report)}`,
      async () => {
        report = await receiver.json<InboxReport>(['inbox']);
        return report.messages === 0;
      },
    );
  }, 90_000);
});
