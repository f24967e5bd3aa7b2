// The Resolver guarantees of transports/resolver.ts as one suite, run against every resolver, built-in or a
// user's (resolver-contract.test.ts): a resolver that passes it can be handed to the agent.
import { afterEach, describe, expect, it } from 'vitest';
import { checkCandidate } from '../../../agent/links/resolver-book.js';
import type { PeerCandidate, Resolver } from '../../../transports/resolver.js';
import type { Medium } from '../../../transports/transport.js';
import { until } from '../../support/until.js';

export interface ResolverHarness {
  /** What the suite is about ("static", "exec: a shell script"...). */
  title: string;
  medium: Medium;
  /**
   * A resolver that, once started, reports a candidate for each of `addresses` (what they mean is the
   * medium's: "host:port" for Wi-Fi). `lose` makes it report one lost, when the resolver has a way to.
   */
  make(addresses: string[]): Promise<{ resolver: Resolver; lose?: (address: string) => Promise<void> }>;
  /** Addresses it can report; two distinct ones. */
  addresses: [string, string];
  /** Runs after every test, passed or failed. */
  cleanup?(): Promise<void>;
}

/** Records what a resolver reports. */
class ResolverProbe {
  readonly found: PeerCandidate[] = [];
  readonly lost: PeerCandidate[] = [];
  readonly warnings: Error[] = [];

  constructor(resolver: Resolver) {
    resolver.on('found', (candidate) => this.found.push(candidate));
    resolver.on('lost', (candidate) => this.lost.push(candidate));
    resolver.on('warning', (error) => this.warnings.push(error));
  }

  foundAddresses(): string[] {
    return [...new Set(this.found.map((candidate) => candidate.address))].sort();
  }
}

export function describeResolverContract(harness: ResolverHarness): void {
  describe(`Resolver contract: ${harness.title}`, () => {
    const running: Resolver[] = [];

    afterEach(async () => {
      for (const resolver of running.splice(0)) await resolver.stop();
      await harness.cleanup?.();
    });

    const make = async (addresses: string[]) => {
      const made = await harness.make(addresses);
      running.push(made.resolver);
      return { ...made, probe: new ResolverProbe(made.resolver) };
    };

    it('has a stable name the agent accepts (1..32 of a-z, 0-9, "_", "-")', async () => {
      const { resolver } = await make([harness.addresses[0]]);
      expect(resolver.name).toMatch(/^[a-z0-9_-]{1,32}$/);
      const name = resolver.name;
      await resolver.start();
      await resolver.stop();
      expect(resolver.name).toBe(name);
    });

    it('reports each address as a candidate the agent accepts, under its own name', async () => {
      const { resolver, probe } = await make([...harness.addresses]);
      await resolver.start();
      await until('both candidates', () => probe.foundAddresses().length === 2);
      expect(probe.foundAddresses()).toEqual([...harness.addresses].sort());
      for (const candidate of probe.found) {
        expect(candidate.medium).toBe(harness.medium);
        expect(candidate.source).toBe(resolver.name);
        const verdict = checkCandidate(candidate, resolver.name, [harness.medium]);
        expect(verdict).toMatchObject({ ok: true });
      }
      expect(probe.warnings).toEqual([]);
    });

    it('reports a candidate lost with the address it was found at', async () => {
      const { resolver, lose, probe } = await make([...harness.addresses]);
      if (lose === undefined) {
        // A resolver that never loses (a fixed list) must at least not report what it did not find.
        await resolver.start();
        await until('both candidates', () => probe.foundAddresses().length === 2);
        expect(probe.lost).toEqual([]);
        return;
      }
      await resolver.start();
      await until('both candidates', () => probe.foundAddresses().length === 2);
      await lose(harness.addresses[0]);
      await until('the lost candidate', () => probe.lost.length > 0);
      expect(probe.lost.map((candidate) => candidate.address)).toEqual([harness.addresses[0]]);
      expect(probe.lost[0]?.source).toBe(resolver.name);
    });

    it('stops: stop() resolves, twice, and without a start', async () => {
      const { resolver: neverStarted } = await make([harness.addresses[0]]);
      await neverStarted.stop();
      const { resolver, probe } = await make([harness.addresses[0]]);
      await resolver.start();
      await until('the candidate', () => probe.found.length > 0);
      await resolver.stop();
      await resolver.stop();
    });

    it('starts again after a stop and reports again', async () => {
      const { resolver, probe } = await make([harness.addresses[0]]);
      await resolver.start();
      await until('the candidate', () => probe.found.length > 0);
      await resolver.stop();
      const before = probe.found.length;
      await resolver.start();
      await until('the candidate again', () => probe.found.length > before);
      expect(probe.found.at(-1)?.address).toBe(harness.addresses[0]);
    });
  });
}
