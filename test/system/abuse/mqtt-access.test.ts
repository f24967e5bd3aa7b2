// Local MQTT clients push against the access control: an anonymous client floods the topics that act
// in the mesh (send, call) and asks again and again for the inbox, and a client guesses passwords
// (each guess costs a PBKDF2 on the agent). The agent answers `status` throughout, its RSS stays within
// idle + 64 MB, nothing reaches the mesh, and the refusals are counted.

import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterAll, expect, it } from 'vitest';
import { countersOf, startMqttAgent, withinBounds } from '../../support/abuse.js';
import { stopAllAgents, temporaryDir } from '../../support/agent-process.js';
import { MqttClients } from '../../support/mqtt-clients.js';
import { rssMb } from '../../support/proc-status.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { until } from '../../support/until.js';

const clients = new MqttClients();
const sockets: Socket[] = [];
const missing =
  spawnSync('which', ['mosquitto_passwd']).status === 0 ? undefined : 'mosquitto_passwd is not installed';

afterAll(async () => {
  clients.endAll();
  for (const socket of sockets) socket.destroy();
  await stopAllAgents();
});

/** A raw 3.1.1 client past CONNECT (or refused and closed). */
async function rawClient(port: number, options: { clientId: string; username?: string; password?: string }) {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
      clientId: options.clientId,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: Buffer.from(options.password) }),
    }),
  );
  const [first] = (await once(socket, 'data')) as [Buffer];
  return { socket, connack: first };
}

describeWhenAvailable('MQTT access control under attack', missing, () => {
  it('an anonymous client floods nearmesh/send and nearmesh/call and keeps asking for the inbox', async () => {
    const { agent, mqtt, pid } = await startMqttAgent('acl-flood');
    const idleMb = rssMb(pid);
    await withinBounds(agent, pid, idleMb, async () => {
      const { socket } = await rawClient(mqtt, { clientId: 'flooder' });
      const PUBLISHES = 20_000;
      const batch: Buffer[] = [];
      for (let i = 0; i < PUBLISHES; i++) {
        const topic = i % 2 === 0 ? 'nearmesh/send/all' : 'nearmesh/call/all/light.set';
        const payload = Buffer.alloc(1000, i);
        batch.push(
          mqttPacket.generate({
            cmd: 'publish',
            topic,
            payload,
            qos: 1,
            messageId: (i % 60_000) + 1,
            retain: false,
            dup: false,
          }),
        );
        if (i % 10 === 0)
          batch.push(
            mqttPacket.generate({
              cmd: 'subscribe',
              messageId: (i % 60_000) + 1,
              subscriptions: [{ topic: 'nearmesh/inbox/#', qos: 1 }],
            }),
          );
        if (batch.length >= 500) socket.write(Buffer.concat(batch.splice(0)));
      }
      socket.write(Buffer.concat(batch.splice(0)));
      await until(
        'every publish refused',
        async () => ((await countersOf(agent))['mqtt.acl_denied_publish'] ?? 0) >= PUBLISHES,
        { timeoutMs: 30_000 },
      );
    });
    const after = await countersOf(agent);
    expect(after['mqtt.acl_denied_subscribe']).toBe(2000);
    expect(after['mqtt.sends'] ?? 0).toBe(0);
    expect(after['mqtt.calls'] ?? 0).toBe(0);
  });

  it('a client guesses passwords: every guess refused, the agent stays responsive', async () => {
    const dir = temporaryDir('nearmesh-acl-abuse-');
    const passwd = join(dir, 'mqtt.passwd');
    spawnSync('mosquitto_passwd', ['-c', '-b', passwd, 'kitchen', 'the-real-one']);
    const { agent, mqtt, pid } = await startMqttAgent('acl-guess', [
      `password_file = ${JSON.stringify(passwd)}`,
    ]);
    const idleMb = rssMb(pid);
    const GUESSES = 1000;
    await withinBounds(agent, pid, idleMb, async () => {
      for (let round = 0; round < GUESSES / 50; round++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            rawClient(mqtt, {
              clientId: `g-${round}-${i}`,
              username: 'kitchen',
              password: `guess-${round}-${i}`,
            }),
          ),
        );
        // CONNACK, 3.1.1 return code 5: not authorized.
        for (const { connack } of answers)
          expect([...connack.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x05]);
        for (const { socket } of answers) socket.destroy();
      }
    });
    expect((await countersOf(agent))['mqtt.auth_failed']).toBe(GUESSES);
    const right = await clients.connect(mqtt, 5, { username: 'kitchen', password: 'the-real-one' });
    expect(right.connected).toBe(true);
  });
});
