// Joining over a LAN: two agents in two network namespaces joined by a veth pair, one in a mesh (its key in
// the config) and one fresh on its defaults. `invite` on the member shows the code's discriminator in its
// mDNS record; `join CODE` on the fresh one finds it there with no address given, takes the key, and the
// two link and exchange a message. A plain mDNS browser on the LAN sees the discriminator, never the code.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InviteResult, JoinResult } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import {
  type AgentProcess,
  expectDelivered,
  startAgent,
  stopAllAgents,
  untilLinked,
} from '../support/agent-process.js';
import { MdnsProcess } from '../support/mdns-process.js';
import { describeWithNetns, VethLan } from '../support/netns.js';

const lan = new VethLan('joins', 1);

describeWithNetns('a fresh device joins a mesh over the LAN with a code', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let browser: MdnsProcess;

  beforeAll(async () => {
    lan.create();
    browser = new MdnsProcess(lan.b, { mode: 'browser' });
    await browser.waitFor((e) => e.event === 'started', 'start of the browser');
    alpha = await startAgent(lan.agentSpec('a', 'alpha', generateMeshKey()));
    bravo = await startAgent(lan.agentSpec('b', 'bravo', undefined));
  }, 30_000);

  afterAll(async () => {
    await stopAllAgents();
    await browser?.stop();
    lan.delete();
  });

  it('finds the inviter by mDNS, takes the key, links and exchanges a message', async () => {
    const opened = await alpha.json<InviteResult>(['invite', '--no-wait']);
    expect(opened).toMatchObject({ state: 'open', founded: false });
    const discriminator = Number(opened.code.slice(0, 2));
    // What the LAN sees: the discriminator in TXT j, nothing of the rest of the code.
    const shown = await browser.waitFor(
      (e) => e.event === 'record' && e.type === 'TXT' && (e.data as string[]).includes(`j=${discriminator}`),
      'the invitation in an mDNS TXT record',
    );
    const secret = opened.code.replace(/-/g, '').slice(2);
    expect(JSON.stringify(browser.events)).not.toContain(secret);
    expect(shown.data).toContain('v=2');

    const joined = await bravo.json<JoinResult>(['join', opened.code]);
    // alpha's mesh key came from its config, before meshes had names: the mesh is unnamed.
    expect(joined).toMatchObject({ mesh: '', inviter: { name: 'alpha' } });
    expect(joined.address).toMatch(/^10\./);

    await untilLinked(alpha, bravo);
    await expectDelivered(bravo, alpha, 'joined over the LAN');
    expect(await alpha.json<InviteResult>(['invitation'])).toMatchObject({
      state: 'joined',
      joined: { name: 'bravo' },
    });
  }, 60_000);
});
