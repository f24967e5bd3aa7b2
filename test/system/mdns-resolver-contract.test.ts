// The resolver contract against the real MdnsResolver: it runs in a child process inside a network namespace
// (a vitest worker cannot enter one), driven through a thin proxy that forwards its events and waits for
// each start and stop to be acknowledged; two other agents on the LAN announce the addresses it must find,
// and one of them leaving (its goodbye) is how a candidate is lost.
import { afterAll, beforeAll } from 'vitest';
import { TypedEmitter } from '../../agent/core/events.js';
import type { Resolver, ResolverEvents } from '../../transports/resolver.js';
import { MDNS_SOURCE } from '../../transports/wifi/mdns-resolver.js';
import { MdnsProcess } from '../support/mdns-process.js';
import { describeWithNetns, VethLan } from '../support/netns.js';
import { describeResolverContract } from '../unit/transports/resolver-contract.js';

const lan = new VethLan('mdnsc', 3);
const MESH_KEY = '33'.repeat(32);
const PORTS = [7461, 7462] as const;
const ADDRESSES = PORTS.map((port) => `${lan.addressA}:${port}`) as [string, string];

/** The MdnsResolver of a child process in namespace B, as a Resolver of this process. */
class MdnsResolverProxy extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name = MDNS_SOURCE;
  #child: MdnsProcess | undefined;

  async start(): Promise<void> {
    if (this.#child === undefined) {
      const child = new MdnsProcess(lan.b, { peerId: 'cccccccccccccccc', meshKey: MESH_KEY, manual: true });
      child.listeners.push((event) => {
        if (event.candidate === undefined) return;
        if (event.event === 'found') this.emit('found', event.candidate as never);
        if (event.event === 'lost') this.emit('lost', event.candidate as never);
      });
      this.#child = child;
      await child.waitFor((e) => e.event === 'started', 'the child');
    }
    await this.#ask('start-resolver', 'resolver-started');
  }

  async stop(): Promise<void> {
    if (this.#child !== undefined) await this.#ask('stop-resolver', 'resolver-stopped');
  }

  async dispose(): Promise<void> {
    await this.#child?.stop();
  }

  async #ask(command: string, answer: string): Promise<void> {
    const child = this.#child as MdnsProcess;
    const from = child.events.length;
    child.command(command);
    await child.waitFor((e) => e.event === answer, answer, from);
  }
}

const announcers = new Map<string, MdnsProcess>();
const proxies: MdnsResolverProxy[] = [];

describeWithNetns('mDNS resolver contract (a real LAN of two namespaces)', () => {
  beforeAll(() => lan.create());
  afterAll(async () => {
    await Promise.all([...announcers.values()].map((announcer) => announcer.stop()));
    await Promise.all(proxies.map((proxy) => proxy.dispose()));
    lan.delete();
  });

  describeResolverContract({
    title: 'mdns (two namespaces)',
    medium: 'wifi',
    addresses: ADDRESSES,
    make: async (addresses) => {
      for (const address of addresses) {
        if (announcers.has(address)) continue;
        const port = Number(address.split(':')[1]);
        const announcer = new MdnsProcess(lan.a, {
          peerId: `${port}`.padStart(16, 'a'),
          meshKey: MESH_KEY,
          interfaceAddress: lan.addressA,
          port,
        });
        await announcer.waitFor((e) => e.event === 'started', `the announcer on ${address}`);
        announcers.set(address, announcer);
      }
      const resolver = new MdnsResolverProxy();
      proxies.push(resolver);
      return {
        resolver,
        lose: async (address) => {
          await announcers.get(address)?.stop();
          announcers.delete(address);
        },
      };
    },
    // Each test starts from an empty LAN: an announcer left from the last would be found too.
    cleanup: async () => {
      await Promise.all(proxies.splice(0).map((proxy) => proxy.dispose()));
      await Promise.all([...announcers.values()].map((announcer) => announcer.stop()));
      announcers.clear();
    },
  });
});
