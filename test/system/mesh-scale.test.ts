// Ten real agents dropped at random in the lab (a seeded random geometric graph: each linked to the ones in
// radio range, up to four hops apart), each dialling only its lab neighbours: every agent must learn a route
// to every other from the announcements alone, and a reliable send from each agent to the one farthest from
// it must be acknowledged end to end. Root only (skips loudly elsewhere, fails under CI=true).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RouteInfo, SendResult } from '../../agent/api.js';
import { geometric, hopsFrom } from '../../scripts/lab/topology.js';
import { MeshLab } from '../support/mesh-lab.js';
import { describeWithNetns } from '../support/netns.js';
import { until } from '../support/until.js';

/** About three links each: sparse enough that most pairs are several hops apart (the diameter is 4). */
const TOPOLOGY = geometric(10, 3);

describeWithNetns('a mesh of 10 agents dropped at random (real agents in the lab)', () => {
  const mesh = new MeshLab(TOPOLOGY, 'ms');

  beforeAll(async () => {
    await mesh.start();
    await mesh.waitLinked(30_000);
  }, 60_000);

  afterAll(() => mesh.stop(), 30_000);

  it('gives every agent a route to every agent beyond its links, with the hop count of a shortest path', async () => {
    const startedAt = Date.now();
    const routesOf = async (node: string): Promise<Map<string, number>> =>
      new Map(
        (await mesh.agent(node).json<RouteInfo[]>(['routes'])).map((route) => [
          route.destination,
          route.hops,
        ]),
      );
    for (const node of TOPOLOGY.nodes) {
      // The route table holds the agents beyond the direct links.
      const expected = new Map(
        [...hopsFrom(TOPOLOGY, node)]
          .filter(([, hops]) => hops > 1)
          .map(([other, hops]) => [mesh.id(other), hops]),
      );
      let seen = new Map<string, number>();
      const named = (routes: Map<string, number>) =>
        JSON.stringify([...routes].map(([id, hops]) => `${mesh.nodeOf(id)}:${hops}`).sort());
      await until(
        `${node} routes to the agents beyond its links`,
        async () => {
          seen = await routesOf(node);
          return [...expected].every(([id, hops]) => seen.get(id) === hops);
        },
        { timeoutMs: 20_000 },
      ).catch((error: Error) => {
        throw new Error(`${error.message}: expected ${named(expected)}, last seen ${named(seen)}`);
      });
    }
    console.log(`[mesh scale] 10 agents: every route in place ${Date.now() - startedAt} ms after all linked`);
  }, 60_000);

  it('acknowledges a reliable send from every agent to the one farthest from it', async () => {
    const farthest = TOPOLOGY.nodes.map((node) => {
      const [target, hops] = [...hopsFrom(TOPOLOGY, node)].sort((a, b) => b[1] - a[1])[0] as [string, number];
      return { node, target, hops };
    });
    expect(Math.max(...farthest.map(({ hops }) => hops))).toBe(4);
    const results = await Promise.all(
      farthest.map(async ({ node, target }) => {
        const client = await mesh.client(node);
        const payload = Buffer.from(`from ${node} to ${target}`).toString('base64');
        return client.request({ cmd: 'send', peer: mesh.id(target), payload, timeout_ms: 10_000 });
      }),
    );
    expect(results.map((result) => (result as SendResult).acknowledged)).toEqual(
      TOPOLOGY.nodes.map(() => true),
    );
    expect(results.map((result) => (result as SendResult).peer)).toEqual(
      farthest.map(({ target }) => mesh.id(target)),
    );
  }, 30_000);
});
