// Two real agents in two network namespaces joined by a veth pair, with no static peers: they find
// each other by mDNS, authenticate, and exchange a message through the CLI.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type AgentProcess, listenTo, startAgent, stopAllAgents, waitFor } from '../support/agent-process.js';
import { describeWithNetns, VethLan } from '../support/netns.js';

const lan = new VethLan('agents', 1);

describeWithNetns('agents on a LAN discover each other by mDNS', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;

  beforeAll(async () => {
    lan.create();
    const meshKey = generateMeshKey();
    // alpha listens on every interface (as the defaults do); bravo on its LAN address only.
    alpha = await startAgent({
      name: 'alpha',
      meshKey,
      port: 7450,
      listenHost: '0.0.0.0',
      discovery: ['mdns'],
      netns: lan.a,
    });
    bravo = await startAgent({
      name: 'bravo',
      meshKey,
      port: 7450,
      listenHost: lan.addressB,
      discovery: ['mdns'],
      netns: lan.b,
    });
  }, 30_000);

  afterAll(async () => {
    await stopAllAgents();
    lan.delete();
  });

  it('links over the LAN with no static peers and exchanges a message', async () => {
    const linked = async (agent: AgentProcess, name: string): Promise<PeerInfo | undefined> =>
      (await agent.json<PeerInfo[]>(['peers'])).find(
        (peer) => peer.name === name && peer.state === 'connected',
      );
    const bravoAtAlpha = await waitFor('alpha linked to bravo', () => linked(alpha, 'bravo'), 20_000);
    const alphaAtBravo = await waitFor('bravo linked to alpha', () => linked(bravo, 'alpha'), 20_000);
    expect(bravoAtAlpha.medium).toBe('wifi');
    expect(bravoAtAlpha.address).toMatch(/^10\.77\.1\.[12]:\d+$/);
    expect(alphaAtBravo.id).toBe((await alpha.json<{ id: string }>(['id'])).id);

    const listener = await listenTo(bravo);
    try {
      const sent = await alpha.cli(['send', 'bravo', 'over the LAN', '--json']);
      expect(sent.stderr).toBe('');
      expect(JSON.parse(sent.stdout)).toMatchObject({ peer: bravoAtAlpha.id, acknowledged: true });
      await waitFor(
        'the message at bravo',
        async () => (listener.messages.length > 0 ? true : undefined),
        5_000,
      );
      expect(listener.messages).toEqual([
        expect.objectContaining({ from: alphaAtBravo.id, from_name: 'alpha', payload: 'over the LAN' }),
      ]);
    } finally {
      listener.stop();
    }
  }, 40_000);
});
