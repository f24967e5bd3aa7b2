// Access control of the MQTT endpoint in mosquitto's formats: a password file written by the real
// mosquitto_passwd, an ACL file, the default rules for anonymous local clients; against the broker with
// mqtt.js (the reason codes on the wire), and real agents with the mosquitto clients and mqtt.js.
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../agent/api.js';
import { MqttBroker } from '../../agent/gateway/broker.js';
import { loadMqttSecurity, type MqttSecuritySettings } from '../../agent/gateway/mqtt-security.js';
import {
  AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
  writeConfig,
} from '../support/agent-process.js';
import { collect, MqttClients, mqttPort } from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
const MESH_KEY = Buffer.from('mqtt-access-test-mesh-key-32byte').toString('base64url');
const TOOLS = ['mosquitto_passwd', 'mosquitto_pub', 'mosquitto_sub'];
const missing = TOOLS.find((tool) => spawnSync('which', [tool]).status !== 0);

const clients = new MqttClients();
afterEach(() => clients.endAll());
afterAll(stopAllAgents);

/** A password file made by the real mosquitto_passwd, with `users` (name → password). */
function passwordFile(dir: string, users: Record<string, string>): string {
  const file = join(dir, 'mqtt.passwd');
  Object.entries(users).forEach(([user, password], index) => {
    const args = [...(index === 0 ? ['-c'] : []), '-b', file, user, password];
    const result = spawnSync('mosquitto_passwd', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`mosquitto_passwd: ${result.stderr}`);
  });
  return file;
}

/** The SUBACK code for one filter (mqtt.js rejects an MQTT 5 refusal, with the SUBACK). */
async function grantedCode(c: MqttClient, filter: string, qos: 0 | 1): Promise<number | undefined> {
  try {
    return (await c.subscribeAsync(filter, { qos }))[0]?.qos;
  } catch (error) {
    return (error as { packet?: { granted?: number[] } }).packet?.granted?.[0];
  }
}

/** The reason code a refused mqtt.js operation carries. */
async function refusalCode(operation: Promise<unknown>): Promise<number | undefined> {
  try {
    await operation;
  } catch (error) {
    return (error as { code?: number }).code;
  }
  throw new Error('expected a refusal');
}

describeWhenAvailable(
  'MQTT access control',
  missing && `${missing} is not installed (apt-get install mosquitto-clients mosquitto)`,
  () => {
    describe('the broker, on the wire', () => {
      let broker: MqttBroker;
      let port: number;
      const dir = temporaryDir('nearmesh-mqtt-acl-');

      async function startBroker(settings: Partial<MqttSecuritySettings>): Promise<void> {
        const security = await loadMqttSecurity({ loopback: true, ...settings });
        broker = new MqttBroker({ auth: security.authenticate, access: security.access });
        port = (await broker.listen('127.0.0.1', 0)).port;
      }
      const client = (version: 4 | 5, options: IClientOptions = {}): Promise<MqttClient> =>
        clients.connect(port, version, options);

      beforeAll(async () => {
        const acl = join(dir, 'mqtt.acl');
        writeFileSync(
          acl,
          [
            'user writer',
            'topic write app/#',
            'topic write secrets/x',
            'user reader',
            'topic read #',
            'topic deny secrets/#',
            'pattern readwrite devices/%c/#',
          ].join('\n'),
        );
        await startBroker({
          passwordFile: passwordFile(dir, { writer: 'w-pass', reader: 'r-pass' }),
          aclFile: acl,
        });
      });
      afterAll(() => broker.close());

      const writer = { username: 'writer', password: 'w-pass' };
      const reader = { username: 'reader', password: 'r-pass' };

      it('refuses a wrong password: 0x86 on MQTT 5, return code 5 on 3.1.1; and anonymous clients here', async () => {
        expect(await refusalCode(client(5, { ...writer, password: 'nope' }))).toBe(0x86);
        expect(await refusalCode(client(4, { ...writer, password: 'nope' }))).toBe(5);
        expect(await refusalCode(client(5, { username: 'nobody', password: 'w-pass' }))).toBe(0x86);
        expect(await refusalCode(client(4))).toBe(5);
        expect(broker.counters.get('mqtt.auth_failed')).toBe(4);
      });

      it('a denied QoS 1 publish gets PUBACK 0x87 on MQTT 5, is dropped silently on 3.1.1', async () => {
        const sub = await client(5, { ...reader, clientId: 'reader-sub' });
        const received = collect(sub);
        await sub.subscribeAsync('#', { qos: 1 });
        const pub5 = await client(5, writer);
        expect(await refusalCode(pub5.publishAsync('elsewhere/x', 'no', { qos: 1 }))).toBe(0x87);
        const pub4 = await client(4, writer);
        await pub4.publishAsync('elsewhere/y', 'no', { qos: 1 }); // acknowledged as if delivered
        await pub4.publishAsync('app/ok', 'yes', { qos: 1 });
        await until('the allowed publish', () => received.some((r) => r.topic === 'app/ok'));
        expect(received.map((r) => r.topic)).toEqual(['app/ok']);
        expect(broker.counters.get('mqtt.acl_denied_publish')).toBe(2);
      });

      it('refuses subscriptions that can read nothing: 0x87 on MQTT 5, 0x80 on 3.1.1', async () => {
        const before = broker.counters.get('mqtt.acl_denied_subscribe');
        const v5 = await client(5, writer);
        expect(await grantedCode(v5, 'app/#', 1)).toBe(0x87); // write only
        expect(await grantedCode(v5, 'devices/+/x', 1)).toBe(1); // devices/<own client id>/x is readable
        const v4 = await client(4, reader);
        expect(await grantedCode(v4, 'secrets/#', 0)).toBe(0x80);
        expect(await grantedCode(v4, 'app/#', 0)).toBe(0);
        expect(broker.counters.get('mqtt.acl_denied_subscribe')).toBe(before + 2);
      });

      it('a subscription to # does not bring topics the client may not read, retained ones included', async () => {
        const pub = await client(5, writer);
        await pub.publishAsync('secrets/x', 'retained secret', { qos: 1, retain: true });
        const sub = await client(5, reader);
        const received = collect(sub);
        await sub.subscribeAsync('#', { qos: 1 });
        const deniedBefore = broker.counters.get('mqtt.acl_denied_deliver');
        await pub.publishAsync('secrets/x', 'live secret', { qos: 1 });
        await pub.publishAsync('app/after', 'visible', { qos: 1 });
        await until('the visible message', () => received.some((r) => r.topic === 'app/after'));
        expect(received.map((r) => r.topic)).toEqual(['app/after']);
        expect(broker.counters.get('mqtt.acl_denied_deliver')).toBeGreaterThan(deniedBefore);
      });

      it('refuses a CONNECT whose will the client could not publish', async () => {
        const will = {
          topic: 'elsewhere/will',
          payload: Buffer.from('gone'),
          qos: 0 as const,
          retain: false,
        };
        expect(await refusalCode(client(5, { ...writer, will }))).toBe(0x87);
        expect(broker.counters.get('mqtt.acl_denied_will')).toBe(1);
      });

      it("does not resume another user's session under the same client id", async () => {
        const first = await client(4, { ...reader, clientId: 'shared', clean: false });
        await first.subscribeAsync('app/#', { qos: 1 });
        first.end(true);
        const second = connect(`mqtt://127.0.0.1:${port}`, {
          ...writer,
          clientId: 'shared',
          clean: false,
          reconnectPeriod: 0,
        });
        clients.add(second);
        const connack = await new Promise<IConnackPacket>((resolve) => second.once('connect', resolve));
        expect(connack.sessionPresent).toBe(false);
      });
    });

    describe('agents', () => {
      let open: AgentProcess;
      let guarded: AgentProcess;
      let openPort: number;
      let guardedPort: number;
      let guardedId: string;
      let openId: string;

      beforeAll(async () => {
        const dir = temporaryDir('nearmesh-mqtt-acl-agent-');
        const acl = join(dir, 'mqtt.acl');
        writeFileSync(
          acl,
          [
            'user kitchen',
            'topic readwrite nearmesh/send/#',
            'topic read nearmesh/inbox/#',
            'topic readwrite app/#',
          ].join('\n'),
        );
        const [portA, portB] = (await freePorts(2)) as [number, number];
        // No password_file: anonymous local clients get the default rules.
        open = await startAgent({
          name: 'acl-open',
          meshKey: MESH_KEY,
          port: portA,
          mqtt: ['listen = "127.0.0.1:0"'],
        });
        guarded = await startAgent({
          name: 'acl-guarded',
          meshKey: MESH_KEY,
          port: portB,
          mqtt: [
            'listen = "127.0.0.1:0"',
            `password_file = ${JSON.stringify(passwordFile(dir, { kitchen: 'k-pass' }))}`,
            `acl_file = ${JSON.stringify(acl)}`,
          ],
        });
        [openPort, guardedPort] = await Promise.all([mqttPort(open), mqttPort(guarded)]);
        openId = (await open.json<{ id: string }>(['id'])).id;
        guardedId = (await guarded.json<{ id: string }>(['id'])).id;
      });

      const counters = async (agent: AgentProcess) => (await agent.json<AgentStatus>(['status'])).counters;

      it('an anonymous local client cannot send into the mesh (mosquitto_pub), nor read the inbox', async () => {
        const common = ['-h', '127.0.0.1', '-p', String(openPort), '-q', '1', '-m', 'spoofed'];
        await run('mosquitto_pub', [...common, '-V', 'mqttv5', '-t', `nearmesh/send/${openId}`]).catch(
          () => {},
        );
        await run('mosquitto_pub', [...common, '-V', 'mqttv311', '-t', 'nearmesh/send/all']);
        await run('mosquitto_pub', [...common, '-V', 'mqttv311', '-t', 'nearmesh/call/all/light.set']);
        await until(
          'the three denials to be counted',
          async () => (await counters(open))['mqtt.acl_denied_publish'] === 3,
        );
        expect((await counters(open))['mqtt.sends'] ?? 0).toBe(0);

        const sub = await clients.connect(openPort, 4);
        expect(await grantedCode(sub, 'nearmesh/inbox/#', 1)).toBe(0x80);
        expect(await grantedCode(sub, 'nearmesh/peers', 1)).toBe(1);
      });

      it('anonymous local apps still talk to each other on their own topics (mosquitto_sub / mosquitto_pub)', async () => {
        const subscriber = run('mosquitto_sub', [
          '-h',
          '127.0.0.1',
          '-p',
          String(openPort),
          '-t',
          'app/#',
          '-C',
          '1',
          '-W',
          '10',
          '-v',
        ]);
        // Publish until the subscriber (which connects on its own time) has it.
        const published = setInterval(() => {
          void run('mosquitto_pub', [
            '-h',
            '127.0.0.1',
            '-p',
            String(openPort),
            '-t',
            'app/light',
            '-m',
            'on',
          ]).catch(() => {});
        }, 100);
        try {
          expect((await subscriber).stdout.trim()).toBe('app/light on');
        } finally {
          clearInterval(published);
        }
      });

      it('a user from the password file with its ACL sends and reads its inbox; a wrong password is refused', async () => {
        const kitchen = await clients.connect(guardedPort, 5, { username: 'kitchen', password: 'k-pass' });
        const received = collect(kitchen);
        await kitchen.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
        await kitchen.publishAsync(`nearmesh/send/${guardedId}`, 'to myself', { qos: 1 });
        await until('the message in the inbox', () =>
          received.some((r) => r.topic === `nearmesh/inbox/${guardedId}`),
        );

        const common = ['-h', '127.0.0.1', '-p', String(guardedPort), '-t', 'app/x', '-m', 'x'];
        const wrong = await run('mosquitto_pub', [...common, '-u', 'kitchen', '-P', 'wrong']).catch(
          (error: { stderr: string }) => error,
        );
        expect((wrong as { stderr: string }).stderr).toMatch(/not authori[sz]ed/i);
        expect(
          await refusalCode(clients.connect(guardedPort, 5, { username: 'kitchen', password: 'wrong' })),
        ).toBe(0x86);
        // With a password file and no rules for them, anonymous clients are refused.
        expect(await refusalCode(clients.connect(guardedPort, 4))).toBe(5);
      });

      it('a listen off loopback without password_file stops the agent, naming the key', async () => {
        const [port, mqtt] = (await freePorts(2)) as [number, number];
        const dir = temporaryDir('nearmesh-mqtt-acl-open-');
        const spec = { name: 'acl-wide', meshKey: MESH_KEY, port, mqtt: [`listen = "0.0.0.0:${mqtt}"`] };
        const agent = new AgentProcess(spec, dir, writeConfig(spec, dir));
        expect(await agent.exited).not.toBe(0);
        expect(agent.output).toMatch(
          /mqtt\.password_file: required: listen = "0\.0\.0\.0:\d+" is not loopback/,
        );
      });
    });
  },
);
