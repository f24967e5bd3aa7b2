// The link manager and its resolvers: every candidate is checked where it enters (a resolver may be a user's
// code or a script), each resolver holds a bounded number, a resolver that cannot start does not stop the
// others, and `nearmesh resolvers` counts what each found, dialled and linked.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { TypedEmitter } from '../../../agent/core/events.js';
import { generateIdentity } from '../../../agent/identity/identity.js';
import { LinkManager } from '../../../agent/links/link-manager.js';
import { ResolverError } from '../../../agent/links/resolver-book.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../../../transports/resolver.js';
import { MemoryNetwork, MemoryTransport } from '../../support/memory-transport.js';
import { until } from '../../support/until.js';

const MESH_KEY = randomBytes(32);

/** A resolver the test drives by hand; `startError` makes its start fail. */
class HandResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  constructor(
    readonly name: string,
    private readonly startError?: Error,
    readonly maxCandidates?: number,
  ) {
    super();
  }

  async start(): Promise<void> {
    if (this.startError !== undefined) throw this.startError;
  }

  async stop(): Promise<void> {}

  report(candidate: unknown): void {
    this.emit('found', candidate as PeerCandidate);
  }

  withdraw(candidate: unknown): void {
    this.emit('lost', candidate as PeerCandidate);
  }
}

const running: LinkManager[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((manager) => manager.stop()));
});

function manager(network: MemoryNetwork, address: string, resolvers: Resolver[]) {
  const counters = new Counters();
  const logLines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logLines.push(JSON.parse(line)) });
  const links = new LinkManager({
    identity: generateIdentity(),
    name: address,
    meshKeys: () => [MESH_KEY],
    transports: [new MemoryTransport(network, address)],
    resolvers,
    log,
    counters,
    redial: { initialMs: 20, maxMs: 100 },
  });
  running.push(links);
  return { links, counters, logLines };
}

const rowOf = (links: LinkManager, name: string) => links.resolvers().find((row) => row.name === name);

describe('LinkManager resolvers', () => {
  it('refuses malformed candidates where they enter: counted, shown, said once a minute, never dialled', async () => {
    const network = new MemoryNetwork();
    const hand = new HandResolver('hand');
    const { links, counters, logLines } = manager(network, 'mem:a', [hand]);
    await links.start();
    hand.report({ medium: 'wifi', address: '10.0.0.2:7450', source: 'hand' }); // no Wi-Fi transport here
    hand.report({ medium: 'memory', address: '', source: 'hand' });
    hand.report({ medium: 'memory', address: 'mem:b', peerId: 'PUMP', source: 'hand' });
    hand.report(null);
    expect(counters.snapshot()['resolvers.invalid_candidates']).toBe(4);
    expect(rowOf(links, 'hand')).toMatchObject({
      state: 'running',
      candidates: 0,
      found: 0,
      invalid: 4,
      dials: 0,
    });
    const said = logLines.filter((line) => line.msg.startsWith('resolver hand: candidate refused'));
    expect(said).toHaveLength(1);
    expect(said[0]?.msg).toContain('medium "wifi" is not one of memory');
  });

  it('takes a candidate under the resolver’s own name, whatever source it claims', async () => {
    const network = new MemoryNetwork();
    const hand = new HandResolver('hand');
    const { links } = manager(network, 'mem:a', [hand]);
    await links.start();
    hand.report({ medium: 'memory', address: 'mem:b', source: 'static' });
    expect(rowOf(links, 'hand')).toMatchObject({ candidates: 1, found: 1 });
    expect(rowOf(links, 'endpoints')).toMatchObject({ candidates: 0 });
    // Another resolver's withdrawal of the same address does not touch this one's.
    hand.withdraw({ medium: 'memory', address: 'mem:b', source: 'static' });
    expect(rowOf(links, 'hand')).toMatchObject({ candidates: 0, lost: 1 });
  });

  it('holds a resolver to its bound and counts the rest as dropped', async () => {
    const network = new MemoryNetwork();
    const hand = new HandResolver('hand', undefined, 2);
    const { links, counters } = manager(network, 'mem:a', [hand]);
    await links.start();
    for (const n of [1, 2, 3, 4]) hand.report({ medium: 'memory', address: `mem:${n}`, source: 'hand' });
    hand.report({ medium: 'memory', address: 'mem:1', source: 'hand' }); // held already: not a new one
    expect(rowOf(links, 'hand')).toMatchObject({ candidates: 2, found: 5, dropped: 2 });
    expect(counters.snapshot()['resolvers.candidates_dropped']).toBe(2);
    hand.withdraw({ medium: 'memory', address: 'mem:1', source: 'hand' });
    hand.report({ medium: 'memory', address: 'mem:3', source: 'hand' });
    expect(rowOf(links, 'hand')).toMatchObject({ candidates: 2, dropped: 2 });
  });

  it('counts the dials and links of each resolver’s candidates', async () => {
    const network = new MemoryNetwork();
    const { links: b } = manager(network, 'mem:b', []);
    await b.start();
    const hand = new HandResolver('hand');
    const { links: a } = manager(network, 'mem:a', [hand]);
    await a.start();
    hand.report({ medium: 'memory', address: 'mem:b', source: 'hand' });
    await until('linked', () => a.peers().some((peer) => peer.state === 'connected'));
    await until('the link counted', () => rowOf(a, 'hand')?.links === 1);
    expect(rowOf(a, 'hand')).toMatchObject({ candidates: 1, dials: 1, links: 1 });
  });

  it('goes on without a resolver that cannot start, and shows it failed with the reason', async () => {
    const network = new MemoryNetwork();
    const { links: b } = manager(network, 'mem:b', []);
    await b.start();
    const broken = new HandResolver('broken', new Error('inventory service unreachable'));
    const hand = new HandResolver('hand');
    const { links: a, counters } = manager(network, 'mem:a', [broken, hand]);
    await a.start();
    expect(rowOf(a, 'broken')).toMatchObject({ state: 'failed', detail: 'inventory service unreachable' });
    expect(counters.snapshot()['resolvers.start_failures']).toBe(1);
    hand.report({ medium: 'memory', address: 'mem:b', source: 'hand' });
    await until('linked through the other resolver', () =>
      a.peers().some((peer) => peer.state === 'connected'),
    );
  });

  it('refuses a second resolver with a name already taken, or a malformed name', async () => {
    const network = new MemoryNetwork();
    const { links } = manager(network, 'mem:a', [new HandResolver('hand')]);
    await links.start();
    await expect(links.addResolver(new HandResolver('hand'))).rejects.toThrow(ResolverError);
    await expect(links.addResolver(new HandResolver('endpoints'))).rejects.toThrow(
      /another resolver has that name/,
    );
    await expect(links.addResolver(new HandResolver('My Resolver'))).rejects.toThrow(/1\.\.32 of a-z/);
  });

  it('stops listening to its resolvers when it stops', async () => {
    const network = new MemoryNetwork();
    const hand = new HandResolver('hand');
    const { links } = manager(network, 'mem:a', [hand]);
    await links.start();
    expect(hand.listenerCount('found')).toBe(1);
    await links.stop();
    expect(hand.listenerCount('found')).toBe(0);
    expect(rowOf(links, 'hand')).toMatchObject({ state: 'stopped', candidates: 0 });
  });
});
