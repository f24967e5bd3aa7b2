// The embedding API as a program uses it: createAgent() runs an agent in-process and `agent.api` is the
// same typed API the CLI, console and MQTT use. Two agents in one process link over real TCP and Noise;
// a reliable send from one arrives at the other's subscriber and is confirmed; stop() releases everything.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { silentLogger } from '../../agent/core/logger.js';
import { type AppMessage, createAgent, loadConfig } from '../../agent/index.js';
import { freePorts, stopAllAgents, temporaryDir, writeConfig } from '../support/agent-process.js';
import { until } from '../support/until.js';

const running: Agent[] = [];
afterAll(async () => {
  await Promise.all(running.map((agent) => agent.stop()));
  await stopAllAgents();
});

async function embedded(name: string, port: number, meshKey: string, peers: string[]): Promise<Agent> {
  const dir = temporaryDir();
  const configPath = writeConfig({ name, meshKey, port, peers }, dir);
  const agent = await createAgent({ config: await loadConfig({ path: configPath }), log: silentLogger() });
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
});
