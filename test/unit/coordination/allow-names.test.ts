// An `allow` list that names an agent lets in only the identity that owns the name (PROTOCOL.md §13.2): a
// member announcing the same name, an impostor, is refused with `forbidden` though it calls itself that.
import { expect, test } from 'vitest';
import { Coordinator } from '../../../agent/coordination/coordinator.js';
import { CapabilityRegistry } from '../../../agent/coordination/registry.js';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import type { KnownAgent } from '../../../agent/mesh/topology.js';
import {
  type CoordinationMessage,
  decodeCoordination,
  encodeCoordination,
  type ResultMessage,
} from '../../../agent/protocol/coordination.js';

const OWNER = '1111111111111111';
const IMPOSTOR = '2222222222222222';

function agentNamed(id: string, name: string): KnownAgent {
  return {
    id,
    name,
    groups: [],
    groupIds: new Set(),
    relays: true,
    neighbours: new Set(),
    initialTtl: 4,
    heardAtMs: 0,
    capabilities: { actions: [], sensors: [] },
  };
}

test('an allow list naming hall-pi refuses another identity that calls itself hall-pi', async () => {
  const registry = new CapabilityRegistry();
  const runs: string[] = [];
  registry.addAction({
    name: 'door.open',
    timeoutMs: 1_000,
    allow: ['hall-pi'],
    handler: {
      kind: 'test',
      invoke: async (_args, context) => {
        runs.push(context.caller);
        return { ok: true, value: null };
      },
    },
  });
  const results = new Map<string, ResultMessage>();
  let wake: (() => void) | undefined;
  const coordinator = new Coordinator({
    selfId: '9999999999999999',
    name: 'door-pi',
    groups: [],
    registry,
    clock: () => Date.now(),
    send: async (peer, payload) => {
      results.set(peer, decodeCoordination(payload) as ResultMessage);
      wake?.();
    },
    knownAgents: () => [agentNamed(OWNER, 'hall-pi'), agentNamed(IMPOSTOR, 'hall-pi')],
    resolvePeer: () => undefined,
    ownsName: (peerId) => peerId === OWNER,
    onCapabilitiesChanged: () => {},
    counters: new Counters(),
    log: silentLogger(),
  });
  const call = (callId: number): CoordinationMessage => ({
    kind: 'call',
    callId: new Uint8Array(16).fill(callId),
    action: 'door.open',
    timeoutMs: 1_000,
    args: {},
    fireAt: null,
  });
  for (const [from, id] of [
    [IMPOSTOR, 1],
    [OWNER, 2],
  ] as const) {
    coordinator.receive(from, encodeCoordination(call(id)));
    while (!results.has(from)) await new Promise<void>((resolve) => (wake = resolve));
  }
  expect(results.get(IMPOSTOR)?.outcome).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  expect(results.get(OWNER)?.outcome).toEqual({ ok: true, value: null });
  expect(runs).toEqual([OWNER]);
});
