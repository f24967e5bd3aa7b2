// What docs/ promise about Home Assistant and Node-RED stays true: the example discovery config in MQTT.md is
// what the gateway publishes for that agent, and the Node-RED flow is a well-formed flow of Node-RED's core
// nodes on topics the agent publishes or takes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isValidTopicFilter, topicMatches } from '../../../agent/core/topic-match.js';
import { haDeviceConfig } from '../../../agent/gateway/homeassistant-discovery.js';
import {
  haAvailabilityTopic,
  PEERS_TOPIC,
  parseCallTopic,
  sensorTopic,
} from '../../../agent/gateway/topic-map.js';
import { deviceDiscoveryProblems } from '../../support/homeassistant-schema.js';

const docs = new URL('../../../docs/', import.meta.url);

describe('docs/MQTT.md, Home Assistant discovery', () => {
  it('shows the config the gateway publishes for its example agent, which Home Assistant takes', () => {
    const text = readFileSync(new URL('MQTT.md', docs), 'utf8');
    const start = text.indexOf('An example config a gateway publishes');
    const block = /```json\n([\s\S]*?)```/.exec(text.slice(start))?.[1];
    const documented: unknown = JSON.parse(block ?? 'null');
    const { config } = haDeviceConfig(
      {
        id: '0123456789abcdef',
        name: 'greenhouse-pi',
        model: 'Raspberry Pi 4 Model B Rev 1.4',
        softwareVersion: '0.1.0',
        sensors: [{ name: 'air.temp', unit: 'Cel' }],
        actions: ['chime'],
      },
      { id: '00112233445566ff', softwareVersion: '0.1.0' },
    );
    expect(documented).toEqual(config);
    expect(deviceDiscoveryProblems(documented)).toEqual([]);
  });
});

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  topic?: string;
  broker?: string;
  wires?: string[][];
}

/** Node-RED's core nodes this flow may use (node-red/packages/node_modules/@node-red/nodes/core). */
const CORE_TYPES = new Set([
  'tab',
  'mqtt-broker',
  'mqtt in',
  'mqtt out',
  'inject',
  'debug',
  'function',
  'change',
]);

describe('docs/node-red/nearmesh-flow.json', () => {
  const flow = JSON.parse(readFileSync(new URL('node-red/nearmesh-flow.json', docs), 'utf8')) as FlowNode[];
  const byId = new Map(flow.map((node) => [node.id, node]));

  it("is a flow of Node-RED's core nodes, every wire and broker pointing at a node in it", () => {
    expect(byId.size).toBe(flow.length);
    for (const node of flow) {
      expect(CORE_TYPES.has(node.type), node.type).toBe(true);
      if (node.type !== 'tab' && node.type !== 'mqtt-broker')
        expect(byId.get(node.z ?? '')?.type).toBe('tab');
      for (const output of node.wires ?? [])
        for (const target of output) expect(byId.has(target), target).toBe(true);
      if (node.type.startsWith('mqtt ')) expect(byId.get(node.broker ?? '')?.type).toBe('mqtt-broker');
    }
  });

  it('subscribes to topics the agent publishes, and calls on a topic the agent takes', () => {
    const published = [
      sensorTopic('0123456789abcdef', 'air.temp'),
      PEERS_TOPIC,
      haAvailabilityTopic('00112233445566ff', '0123456789abcdef'),
    ];
    const subscriptions = flow.filter((node) => node.type === 'mqtt in').map((node) => node.topic ?? '');
    for (const topic of published)
      expect(
        subscriptions.some((filter) => isValidTopicFilter(filter) && topicMatches(filter, topic)),
        topic,
      ).toBe(true);
    const calls = flow
      .filter((node) => node.type === 'inject')
      .map((node) => parseCallTopic(node.topic ?? ''));
    expect(calls).toEqual([{ target: 'garage-pi', action: 'relay' }]);
    const reply = flow.find((node) => node.type === 'mqtt out') as FlowNode & { respTopic?: string };
    expect(subscriptions).toContain(reply.respTopic);
  });
});
