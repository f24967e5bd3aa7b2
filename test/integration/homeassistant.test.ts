// Home Assistant MQTT discovery through a real mosquitto as Home Assistant's broker: a gateway agent bridged to
// it publishes a device per agent (checked against Home Assistant's schema), keeps sensor states current, runs
// button presses and switch commands, says who is reachable, removes a revoked agent's device, and the broker
// says "offline" for the gateway when its process dies.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentStatus, PeerInfo } from '../../agent/api.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { deviceDiscoveryProblems } from '../support/homeassistant-schema.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { MqttClients } from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { writeShScript } from '../support/sh-script.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('home-assistant-test-mesh-key-32b').toString('base64url');

describeWhenAvailable('Home Assistant discovery through its broker', missingMosquittoTools(), () => {
  let broker: Mosquitto;
  let brokerDir: string;
  let gateway: AgentProcess;
  let device: AgentProcess;
  let gatewayId: string;
  let deviceId: string;
  let scripts: string;
  const clients = new MqttClients();
  /** What Home Assistant's broker holds or sent last, by topic. */
  const seen = new Map<string, { payload: string; retain: boolean }[]>();
  let homeAssistant: MqttClient;

  const last = (topic: string) => seen.get(topic)?.at(-1)?.payload;
  const configTopic = (peer: string) => `homeassistant/device/nearmesh_${peer}/config`;

  beforeAll(async () => {
    brokerDir = await mkdtemp(join(tmpdir(), 'nearmesh-ha-broker-'));
    scripts = temporaryDir('nearmesh-ha-');
    const [brokerPort, portG, portD] = (await freePorts(3)) as [number, number, number];
    broker = new Mosquitto(brokerDir, brokerPort);
    await broker.start();
    // Home Assistant: subscribed to discovery and to everything nearmesh says on its broker.
    homeAssistant = await clients.connect(brokerPort, 5);
    homeAssistant.on('message', (topic, payload, packet) => {
      const list = seen.get(topic) ?? [];
      list.push({ payload: payload.toString(), retain: packet.retain });
      seen.set(topic, list);
    });
    await homeAssistant.subscribeAsync(['homeassistant/#', 'nearmesh/#'], { qos: 1 });

    const relayState = join(scripts, 'relay-state');
    const temp = writeShScript(join(scripts, 'temp'), 'echo 21.5');
    const chime = writeShScript(join(scripts, 'chime'), `cat > ${join(scripts, 'chimed')}; echo '{}'`);
    const relaySet = writeShScript(
      join(scripts, 'relay-set'),
      `sed -n 's/.*"value": *\\([01]\\).*/\\1/p' > ${relayState}; cat ${relayState}`,
    );
    const relayGet = writeShScript(join(scripts, 'relay-get'), `cat ${relayState} 2>/dev/null || echo 0`);
    gateway = await startAgent({
      name: 'ha-gw',
      meshKey: MESH_KEY,
      port: portG,
      mqtt: ['listen = "127.0.0.1:0"', '[mqtt.upstream]', `url = "mqtt://127.0.0.1:${brokerPort}"`],
      extraToml: ['[homeassistant]', 'enabled = true'].join('\n'),
    });
    device = await startAgent({
      name: 'ha-dev',
      meshKey: MESH_KEY,
      port: portD,
      peers: [`127.0.0.1:${portG}`],
      extraToml: [
        ...['[[sensors]]', 'name = "air.temp"', `exec = [${JSON.stringify(temp)}]`, 'unit = "Cel"'],
        ...['[[sensors]]', 'name = "relay"', `exec = [${JSON.stringify(relayGet)}]`],
        ...['[[actions]]', 'name = "relay"', `exec = [${JSON.stringify(relaySet)}]`],
        ...['[[actions]]', 'name = "chime"', `exec = [${JSON.stringify(chime)}]`],
      ].join('\n'),
    });
    gatewayId = (await gateway.json<{ id: string }>(['id'])).id;
    deviceId = (await device.json<{ id: string }>(['id'])).id;
    await until('the agents to link', async () => {
      const peers = await gateway.json<PeerInfo[]>(['peers']);
      return peers.some((peer) => peer.id === deviceId && peer.state === 'connected');
    });
  }, 40_000);

  afterAll(async () => {
    clients.endAll();
    await stopAllAgents();
    await broker?.stop();
    await rm(brokerDir, { recursive: true, force: true });
  });

  it('publishes a device per agent, retained, that Home Assistant takes whole', async () => {
    await until('the device config with its sensors and actions', () => {
      const config = last(configTopic(deviceId));
      return config?.includes('switch_relay') === true && config.includes('button_chime');
    });
    await until('the gateway config', () => last(configTopic(gatewayId)) !== undefined);
    for (const peer of [gatewayId, deviceId])
      expect(deviceDiscoveryProblems(JSON.parse(last(configTopic(peer)) ?? 'null'))).toEqual([]);
    const config = JSON.parse(last(configTopic(deviceId)) ?? '{}');
    expect(config.device).toMatchObject({ identifiers: [`nearmesh_${deviceId}`], name: 'ha-dev' });
    const temp = Object.values(config.components as Record<string, Record<string, string>>).find(
      (component) => component.name === 'air.temp',
    );
    expect(temp).toMatchObject({
      platform: 'sensor',
      device_class: 'temperature',
      unit_of_measurement: '°C',
      state_topic: `nearmesh/sensor/${deviceId}/air.temp`,
    });
    // Each device says what the agent runs on (its board) and which version: the gateway's own, and the
    // other agent's as it announced them.
    const version = (await device.json<{ version: string }>(['status'])).version;
    const own = JSON.parse(last(configTopic(gatewayId)) ?? '{}');
    for (const each of [own, config]) {
      expect(typeof each.device.model).toBe('string');
      expect(each.device.sw_version).toBe(version);
    }
    // A client that connects later (Home Assistant restarting) gets the configs as retained messages.
    const later = await clients.connect(broker.port, 5);
    const retained: string[] = [];
    later.on('message', (topic, _payload, packet) => {
      if (packet.retain) retained.push(topic);
    });
    await later.subscribeAsync('homeassistant/device/#', { qos: 1 });
    await until('the retained configs', () => retained.length >= 2);
    expect(retained.sort()).toEqual([configTopic(gatewayId), configTopic(deviceId)].sort());
  });

  it('says the gateway and the agent are online, and keeps the sensor state current with nothing else reading it', async () => {
    await until('the gateway online', () => last(`nearmesh/ha/${gatewayId}/status`) === 'online');
    await until(
      'the agent online',
      () => last(`nearmesh/ha/${gatewayId}/availability/${deviceId}`) === 'online',
    );
    await until(
      'two readings of air.temp on Home Assistant broker',
      () => (seen.get(`nearmesh/sensor/${deviceId}/air.temp`)?.length ?? 0) >= 2,
      { timeoutMs: 30_000 },
    );
    expect(JSON.parse(last(`nearmesh/sensor/${deviceId}/air.temp`) ?? '{}')).toMatchObject({
      value: 21.5,
      unit: 'Cel',
      peer_name: 'ha-dev',
    });
  }, 40_000);

  it('runs a button press and a switch command, and the switch state follows', async () => {
    await homeAssistant.publishAsync(`nearmesh/ha/${gatewayId}/call/${deviceId}/chime`, '{}', { qos: 1 });
    await until('the chime action to run', () => existsSync(join(scripts, 'chimed')));
    await homeAssistant.publishAsync(`nearmesh/ha/${gatewayId}/call/${deviceId}/relay`, '{"value": 1}', {
      qos: 1,
    });
    await until('the relay on, and its state read back', () => {
      const state = last(`nearmesh/sensor/${deviceId}/relay`);
      return state !== undefined && JSON.parse(state).value === 1;
    });
    expect(readFileSync(join(scripts, 'relay-state'), 'utf8').trim()).toBe('1');
  }, 30_000);

  it('republishes discovery when Home Assistant says it is back', async () => {
    const before = seen.get(configTopic(deviceId))?.length ?? 0;
    await homeAssistant.publishAsync('homeassistant/status', 'online', { qos: 1 });
    await until('the config again', () => (seen.get(configTopic(deviceId))?.length ?? 0) > before);
  });

  it('says an agent that went away is offline, and removes its device once it is revoked', async () => {
    await device.stop();
    await until(
      'the agent offline',
      () => last(`nearmesh/ha/${gatewayId}/availability/${deviceId}`) === 'offline',
      {
        timeoutMs: 20_000,
      },
    );
    expect(last(configTopic(deviceId))).not.toBe('');
    const revoked = await gateway.cli(['revoke', deviceId]);
    expect(revoked.code).toBe(0);
    await until('the config removed', () => last(configTopic(deviceId)) === '');
    // Gone from the broker: nothing retained is left for it.
    const later = await clients.connect(broker.port, 5);
    const retained: string[] = [];
    later.on('message', (topic, _payload, packet) => {
      if (packet.retain) retained.push(topic);
    });
    await later.subscribeAsync(['homeassistant/device/#', `nearmesh/ha/${gatewayId}/availability/#`], {
      qos: 1,
    });
    await until('the gateway config, retained', () => retained.includes(configTopic(gatewayId)));
    expect(retained).not.toContain(configTopic(deviceId));
    expect(retained).not.toContain(`nearmesh/ha/${gatewayId}/availability/${deviceId}`);
  }, 40_000);

  it('the broker says the gateway is offline when its process dies', async () => {
    const status = await gateway.json<AgentStatus>(['status']);
    expect(status.mqtt.state === 'on' && status.mqtt.upstream?.connected).toBe(true);
    await gateway.stop('SIGKILL');
    await until('the gateway offline', () => last(`nearmesh/ha/${gatewayId}/status`) === 'offline', {
      timeoutMs: 20_000,
    });
  }, 30_000);
});
