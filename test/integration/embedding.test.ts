// The embedding API as a program uses it: createAgent() runs an agent in-process and `agent.api` is the
// same typed API the CLI, console and MQTT use. Two agents in one process link over real TCP and Noise;
// a reliable send from one arrives at the other's subscriber and is confirmed; stop() releases everything.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { silentLogger } from '../../agent/core/logger.js';
import {
  type AppMessage,
  createAgent,
  loadConfig,
  type PeerCandidate,
  type Resolver,
  ResolverError,
} from '../../agent/index.js';
import { freePorts, stopAllAgents, temporaryDir, writeConfig } from '../support/agent-process.js';
import { until } from '../support/until.js';

const running: Agent[] = [];
afterAll(async () => {
  await Promise.all(running.map((agent) => agent.stop()));
  await stopAllAgents();
});

async function embedded(
  name: string,
  port: number,
  meshKey: string,
  peers: string[],
  resolvers?: Resolver[],
): Promise<Agent> {
  const dir = temporaryDir();
  const configPath = writeConfig({ name, meshKey, port, peers }, dir);
  const config = await loadConfig({ path: configPath });
  const agent = await createAgent({
    config,
    log: silentLogger(),
    ...(resolvers !== undefined && { resolvers }),
  });
  running.push(agent);
  return agent;
}

describe('embedding API', () => {
  it('runs two agents in one process that link, send reliably and stop cleanly', async () => {
    const meshKey = generateMeshKey();
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    const alpha = await embedded('alpha', alphaPort, meshKey, []);
    const bravo = await embedded('bravo', bravoPort, meshKey, [`127.0.0.1:${alphaPort}`]);
    expect(alpha.api.id().name).toBe('alpha');

    const received: AppMessage[] = [];
    const unsubscribe = alpha.api.subscribe((message) => received.push(message));
    await until('bravo to link with alpha', () =>
      bravo.api.peers().some((peer) => peer.name === 'alpha' && peer.state === 'connected'),
    );
    const sent = await bravo.api.send('alpha', [Buffer.from('one'), Buffer.from('two')], { wait: true });
    expect(sent).toMatchObject({ peer: alpha.api.id().id, count: 2, acknowledged: true });
    await until('both messages at alpha', () => received.length === 2);
    expect(received.map((message) => Buffer.from(message.payload).toString())).toEqual(['one', 'two']);
    expect(received[0]).toMatchObject({ from: bravo.api.id().id, fromName: 'bravo', hops: 1 });
    unsubscribe();

    // They also wait in alpha's app inbox: a consumer gets them, takes them, and the inbox is empty.
    const taken: AppMessage[] = [];
    const inbox = alpha.api.listen({ consumer: 'embedded-app' }, (message) => {
      taken.push(message);
      if (message.inboxId !== undefined) inbox.take(message.inboxId);
    });
    await until('the waiting messages', () => taken.length === 2);
    expect(taken.map((message) => Buffer.from(message.payload).toString())).toEqual(['one', 'two']);
    expect(alpha.api.inbox()).toMatchObject({
      messages: 0,
      consumer_list: [{ name: 'embedded-app', waiting: 0 }],
    });
    inbox.stop();

    const status = await bravo.api.status();
    expect(status).toMatchObject({ name: 'bravo', peers: { connected: 1 }, queued: { messages: 0 } });

    await bravo.stop();
    running.splice(running.indexOf(bravo), 1);
    // Stopped for good: its control socket is gone.
    expect(existsSync(bravo.config.control.socketPath)).toBe(false);
    await until('alpha to see bravo go', () =>
      alpha.api.peers().every((peer) => peer.name !== 'bravo' || peer.state !== 'connected'),
    );
  });

  it("links through a program's own resolver, and refuses one named like a built-in", async () => {
    // What an embedding program writes: node's EventEmitter and the exported types, nothing else.
    class InventoryResolver extends EventEmitter implements Resolver {
      readonly name = 'inventory';
      constructor(private readonly address: string) {
        super();
      }
      async start(): Promise<void> {
        setImmediate(() =>
          this.emit('found', {
            medium: 'wifi',
            address: this.address,
            source: this.name,
          } satisfies PeerCandidate),
        );
      }
      async stop(): Promise<void> {}
    }
    const meshKey = generateMeshKey();
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    await embedded('alpha', alphaPort, meshKey, []);
    const bravo = await embedded(
      'bravo',
      bravoPort,
      meshKey,
      [],
      [new InventoryResolver(`127.0.0.1:${alphaPort}`)],
    );
    await until('bravo to link with alpha through its resolver', () =>
      bravo.api.peers().some((peer) => peer.name === 'alpha' && peer.state === 'connected'),
    );
    expect(bravo.api.resolvers().find((row) => row.name === 'inventory')).toMatchObject({
      state: 'running',
      candidates: 1,
      links: 1,
    });
    const impostor = new InventoryResolver('127.0.0.1:1');
    Object.defineProperty(impostor, 'name', { value: 'mdns' });
    const [port] = (await freePorts(1)) as [number];
    await expect(embedded('charlie', port, meshKey, [], [impostor])).rejects.toThrow(ResolverError);
  });
});
