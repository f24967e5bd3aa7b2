// The mDNS resolver on a real (virtual) LAN: two network namespaces joined by a veth pair, one child
// process in each. mDNS multicasts on every interface it sees, so it never runs in the root namespace.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type MdnsChildEvent, MdnsProcess } from '../support/mdns-process.js';
import { describeWithNetns, VethLan } from '../support/netns.js';
import { until } from '../support/until.js';

const ID_A = 'aaaaaaaaaaaaaaaa';
const ID_B = 'bbbbbbbbbbbbbbbb';
const MESH_KEY = '11'.repeat(32);
const OTHER_MESH_KEY = '22'.repeat(32);
const lan = new VethLan('mdns', 0);
const NS_A = lan.a;
const NS_B = lan.b;
const ADDRESS_A = lan.addressA;
const ADDRESS_B = lan.addressB;

describeWithNetns('MdnsResolver between two network namespaces', () => {
  const agents: MdnsProcess[] = [];

  beforeAll(() => lan.create());

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.stop()));
  });

  afterAll(() => lan.delete());

  const startAgent = (namespace: string, options: Record<string, unknown>): MdnsProcess => {
    const agent = new MdnsProcess(namespace, options);
    agents.push(agent);
    return agent;
  };
  /** Asks for the resolver's count of ignored announcements until it reaches `atLeast`. */
  const ignoredReaches = async (agent: MdnsProcess, atLeast: number): Promise<void> => {
    await until(
      `${atLeast} ignored announcement(s)`,
      async () => {
        const from = agent.events.length;
        agent.command('ignored');
        const { count } = await agent.waitFor((e) => e.event === 'ignored', 'the ignored count', from);
        return (count ?? 0) >= atLeast;
      },
      { intervalMs: 100 },
    );
  };

  it('finds the other agent with its peer id and a dialable address, never itself, and loses it on goodbye', async () => {
    // A names its interface; B relies on the default (every interface): both must work.
    const alpha = startAgent(NS_A, { peerId: ID_A, meshKey: MESH_KEY, interfaceAddress: ADDRESS_A });
    const bravo = startAgent(NS_B, { peerId: ID_B, meshKey: MESH_KEY });
    const bravoPort = (await bravo.waitFor((e) => e.event === 'started', 'start of bravo')).port;
    const alphaPort = (await alpha.waitFor((e) => e.event === 'started', 'start of alpha')).port;

    const atAlpha = await alpha.waitFor((e) => e.event === 'found', 'bravo found by alpha');
    expect(atAlpha.candidate).toEqual({
      medium: 'wifi',
      address: `${ADDRESS_B}:${bravoPort}`,
      peerId: ID_B,
      source: 'mdns',
    });
    const atBravo = await bravo.waitFor((e) => e.event === 'found', 'alpha found by bravo');
    expect(atBravo.candidate?.address).toBe(`${ADDRESS_A}:${alphaPort}`);
    expect(atBravo.candidate?.peerId).toBe(ID_A);

    // The candidate is what the TCP transport dials.
    alpha.command(`dial ${atAlpha.candidate?.address}`);
    await alpha.waitFor((e) => e.event === 'dialed', 'dial from alpha to bravo');
    expect((await bravo.waitFor((e) => e.event === 'frame', 'frame at bravo')).text).toBe(
      `hello from ${ID_A}`,
    );

    expect(alpha.events.some((e) => e.candidate?.peerId === ID_A)).toBe(false);
    expect(bravo.events.some((e) => e.candidate?.peerId === ID_B)).toBe(false);
    expect(alpha.events.filter((e) => e.event === 'warning')).toEqual([]);

    await bravo.stop();
    const lost = await alpha.waitFor((e) => e.event === 'lost', 'bravo lost by alpha');
    expect(lost.candidate).toEqual(atAlpha.candidate);
  });

  it('rotates its name and hint: peers find the same address again, and the link stays up', async () => {
    const alpha = startAgent(NS_A, { peerId: ID_A, meshKey: MESH_KEY, interfaceAddress: ADDRESS_A });
    const bravo = startAgent(NS_B, { peerId: ID_B, meshKey: MESH_KEY, interfaceAddress: ADDRESS_B });
    const { instanceName: first } = await alpha.waitFor((e) => e.event === 'started', 'start of alpha');
    const found = await bravo.waitFor((e) => e.event === 'found', 'alpha found by bravo');
    bravo.command(`dial ${found.candidate?.address}`);
    await bravo.waitFor((e) => e.event === 'dialed', 'dial from bravo to alpha');

    const rotatedAt = bravo.events.length;
    alpha.command('rotate');
    const { instanceName: second } = await alpha.waitFor((e) => e.event === 'rotated', 'rotation');
    expect(second).toMatch(/^nearmesh-[0-9a-f]{8}$/);
    expect(second).not.toBe(first);
    // The old instance says goodbye, the new one is the same peer at the same address.
    const isAlpha = (event: MdnsChildEvent) => event.candidate?.peerId === ID_A;
    const lost = await bravo.waitFor(
      (e) => e.event === 'lost' && isAlpha(e),
      'the old instance lost',
      rotatedAt,
    );
    const again = await bravo.waitFor(
      (e) => e.event === 'found' && isAlpha(e),
      'the new one found',
      rotatedAt,
    );
    expect(lost.candidate).toEqual(found.candidate);
    expect(again.candidate).toEqual(found.candidate);
    // The link dialled before the rotation outlived it.
    expect(bravo.events.some((e) => e.event === 'link-closed')).toBe(false);
  });

  it('turns multicast trouble into warnings, not a crash: an interface address this host lacks', async () => {
    const lonely = startAgent(NS_A, { peerId: ID_A, meshKey: MESH_KEY, interfaceAddress: '10.99.0.1' });
    await lonely.waitFor((e) => e.event === 'started', 'start despite the bad interface');
    const warning = await lonely.waitFor((e) => e.event === 'warning', 'a warning about the interface');
    expect(warning.message).toMatch(/EADDRNOTAVAIL|EINVAL|ENODEV/);
    await lonely.stop();
    expect(lonely.events.at(-1)?.event).toBe('stopped');
  });

  // Alpha's browser reports the v1 instance once (its records never change), so this cannot tell "once" from
  // "every time": the once-an-hour limit per instance is OncePerInterval's, tested in
  // test/unit/transports/ble/transport-policy.test.ts.
  it('warns about a protocol v1 agent, with one warning, and never reports it', async () => {
    const alpha = startAgent(NS_A, { peerId: ID_A, meshKey: MESH_KEY, interfaceAddress: ADDRESS_A });
    await alpha.waitFor((e) => e.event === 'started', 'start of alpha');
    const older = startAgent(NS_B, { mode: 'v1', interfaceAddress: ADDRESS_B });
    await older.waitFor((e) => e.event === 'started', 'start of the v1 agent');
    const warning = await alpha.waitFor((e) => e.event === 'warning', 'warning about the v1 agent');
    expect(warning.code).toBe('older-agent');
    expect(warning.message).toBe(`protocol v1 agent at ${ADDRESS_B} ignored: this agent speaks 2`);
    await ignoredReaches(alpha, 1);
    expect(alpha.events.filter((e) => e.event === 'warning')).toHaveLength(1);
    expect(alpha.events.some((e) => e.event === 'found')).toBe(false);
  });

  it('ignores an agent of another mesh quietly: counted, no warning, never reported', async () => {
    const alpha = startAgent(NS_A, { peerId: ID_A, meshKey: MESH_KEY, interfaceAddress: ADDRESS_A });
    await alpha.waitFor((e) => e.event === 'started', 'start of alpha');
    const stranger = startAgent(NS_B, { peerId: ID_B, meshKey: OTHER_MESH_KEY, interfaceAddress: ADDRESS_B });
    await stranger.waitFor((e) => e.event === 'started', 'start of the stranger');
    await Promise.all([ignoredReaches(alpha, 1), ignoredReaches(stranger, 1)]);
    expect(alpha.events.filter((e) => e.event === 'warning' || e.event === 'found')).toEqual([]);
    expect(stranger.events.filter((e) => e.event === 'warning' || e.event === 'found')).toEqual([]);
  });
});
