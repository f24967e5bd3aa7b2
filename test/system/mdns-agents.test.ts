// Two real agents in two network namespaces joined by a veth pair, with no static peers: they find
// each other by mDNS, authenticate, and exchange a message through the CLI, while a plain mDNS browser
// without the key learns neither their names nor their peer ids.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type AgentProcess, listenTo, startAgent, stopAllAgents } from '../support/agent-process.js';
import { MdnsProcess } from '../support/mdns-process.js';
import { describeWithNetns, VethLan } from '../support/netns.js';
import { until } from '../support/until.js';

const lan = new VethLan('agents', 1);

describeWithNetns('agents on a LAN discover each other by mDNS', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let browser: MdnsProcess;

  beforeAll(async () => {
    lan.create();
    // Next to bravo, it hears alpha across the LAN and bravo on its own interface.
    browser = new MdnsProcess(lan.b, { mode: 'browser' });
    await browser.waitFor((e) => e.event === 'started', 'start of the browser');
    const meshKey = generateMeshKey();
    // alpha listens on every interface (as the defaults do); bravo on its LAN address only.
    alpha = await startAgent(lan.agentSpec('a', 'alpha', meshKey));
    bravo = await startAgent(lan.agentSpec('b', 'bravo', meshKey));
  }, 30_000);

  afterAll(async () => {
    await stopAllAgents();
    await browser?.stop();
    lan.delete();
  });

  it('links over the LAN with no static peers and exchanges a message', async () => {
    const linked = async (agent: AgentProcess, name: string): Promise<PeerInfo | undefined> =>
      (await agent.json<PeerInfo[]>(['peers'])).find(
        (peer) => peer.name === name && peer.state === 'connected',
      );
    const bravoAtAlpha = await until('alpha linked to bravo', () => linked(alpha, 'bravo'), {
      timeoutMs: 20_000,
    });
    const alphaAtBravo = await until('bravo linked to alpha', () => linked(bravo, 'alpha'), {
      timeoutMs: 20_000,
    });
    expect(bravoAtAlpha.medium).toBe('wifi');
    expect(bravoAtAlpha.address).toMatch(/^10\.77\.1\.[12]:\d+$/);
    expect(alphaAtBravo.id).toBe((await alpha.json<{ id: string }>(['id'])).id);

    const listener = await listenTo(bravo);
    try {
      const sent = await alpha.cli(['send', 'bravo', 'over the LAN', '--json']);
      expect(sent.stderr).toBe('');
      expect(JSON.parse(sent.stdout)).toMatchObject({ peer: bravoAtAlpha.id, acknowledged: true });
      await until('the message at bravo', () => listener.messages.length > 0, { timeoutMs: 5_000 });
      expect(listener.messages).toEqual([
        expect.objectContaining({ from: alphaAtBravo.id, from_name: 'alpha', payload: 'over the LAN' }),
      ]);
    } finally {
      listener.stop();
    }

    // What the browser heard: PTR, SRV, TXT and address records of both agents, none naming them.
    const ids = [bravoAtAlpha.id, alphaAtBravo.id];
    const records = browser.events.filter((e) => e.event === 'record');
    const instances = new Set(
      records.filter((r) => r.type === 'PTR' && r.name === '_nearmesh._tcp.local').map((r) => String(r.data)),
    );
    expect(instances.size).toBe(2);
    for (const instance of instances)
      expect(instance).toMatch(/^nearmesh-[0-9a-f]{8}\._nearmesh\._tcp\.local$/);
    const txt = records.filter((r) => r.type === 'TXT').flatMap((r) => r.data as string[]);
    expect(txt).toContain('v=2');
    expect(txt.some((entry) => /^h=[0-9a-f]{56}$/.test(entry))).toBe(true);
    for (const record of records) {
      const text = JSON.stringify(record).toLowerCase();
      for (const word of ['alpha', 'bravo', ...ids, ...ids.map((id) => id.slice(0, 8))]) {
        expect(text).not.toContain(word);
      }
    }
  }, 40_000);
});
