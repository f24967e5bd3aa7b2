// Row 21: the local MQTT endpoint under the worst of the floods an unprivileged local user can send, against
// the same agent idle: its event-loop delay (the agent's own status, perf_hooks over the last 10-20 s) and
// its resident memory (/proc VmRSS, sampled every 50 ms). Each flood on a fresh agent: 200 connections each
// holding an unfinished 200 KB PUBLISH; 20 clients with 1,000 subscriptions each that then all leave at
// once; a publisher filling the queues of 3 offline persistent sessions with 100 KB messages; 10,000 retained
// messages, then 20 clients subscribing at once to filters that match them all; 100 subscribers to `#` that
// never read while 3,000 messages of 10 KB are published.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectAsync, type MqttClient } from 'mqtt';
import { generate } from 'mqtt-packet';
import { type BenchChild, STOP_GRACE_MS, startChild, stopChild } from './bench-child.js';
import { vmRssBytes, waitUntilReady, writeAgentConfig } from './rss-bench.js';
import { formatMegabytes, formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep, withTimeout } from './timing.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const MAX_LOOP_DELAY_MS = 50;
const MAX_RSS_GROWTH_BYTES = 64 * 2 ** 20;
/** The idle agent settles (V8's memory reducer runs ~8 s after start-up) before the idle readings. */
const SETTLE_MS = 12_000;
const UNFINISHED = { connections: 200, packetBytes: 200_000, sentBytes: 150_000 };
const SUBSCRIBERS = { clients: 20, filters: 1_000 };
const OFFLINE = { sessions: 3, messages: 60, payloadBytes: 100_000 };
const RETAINED = { messages: 10_000, payloadBytes: 50, clients: 20, filters: ['#', 'ret/#', '+/+/+'] };

interface AgentStatusView {
  mqtt: { listen?: string };
  event_loop: { delay_max_ms: number; delay_p99_ms: number };
}

function status(socket: string): Promise<AgentStatusView> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI_PATH, 'status', '--json', '--socket', socket], (error, stdout) => {
      if (error !== null) reject(error);
      else resolve(JSON.parse(stdout) as AgentStatusView);
    });
  });
}

/** A CONNECT for a clean 3.1.1 session with an id the broker assigns, and no keep-alive. */
const CONNECT = generate({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clientId: '',
  clean: true,
  keepalive: 0,
});

/** A socket to the endpoint that has sent `bytes`. */
function rawClient(port: number, bytes: Buffer): Socket {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.write(bytes);
  return socket;
}

/** Connections that send a CONNECT and most of a PUBLISH, then nothing. */
function holdUnfinished(port: number): Socket[] {
  const publish = generate({
    cmd: 'publish',
    topic: 'app/flood',
    payload: Buffer.alloc(UNFINISHED.packetBytes),
    qos: 0,
    dup: false,
    retain: false,
  }).subarray(0, UNFINISHED.sentBytes);
  const bytes = Buffer.concat([CONNECT, publish]);
  return Array.from({ length: UNFINISHED.connections }, () => rawClient(port, bytes));
}

async function subscribeAndLeave(url: string): Promise<void> {
  const clients = await Promise.all(
    Array.from({ length: SUBSCRIBERS.clients }, () => connectAsync(url, { reconnectPeriod: 0 })),
  );
  // Past max_subscriptions_total the broker refuses filters in the SUBACK (mqtt.js then rejects): as an
  // attacker, carry on.
  await Promise.all(
    clients.map((client, c) =>
      client
        .subscribeAsync(
          Array.from({ length: SUBSCRIBERS.filters }, (_, i) => `app/${c}/${i}/+/#`),
          { qos: 0 },
        )
        .catch(() => undefined),
    ),
  );
  await Promise.all(clients.map((client) => client.endAsync(true)));
}

async function fillOfflineQueues(url: string): Promise<void> {
  const ids = Array.from({ length: OFFLINE.sessions }, (_, i) => `bench-offline-${i}`);
  for (const clientId of ids) {
    const client = await connectAsync(url, { clientId, clean: false, reconnectPeriod: 0 });
    await client.subscribeAsync(`app/offline/${clientId}`, { qos: 1 });
    await client.endAsync();
  }
  const publisher: MqttClient = await connectAsync(url, { reconnectPeriod: 0 });
  const payload = Buffer.alloc(OFFLINE.payloadBytes);
  for (let n = 0; n < OFFLINE.messages; n++)
    await Promise.all(ids.map((id) => publisher.publishAsync(`app/offline/${id}`, payload, { qos: 1 })));
  await publisher.endAsync();
}

async function subscribeToRetained(url: string): Promise<void> {
  const publisher = await connectAsync(url, { reconnectPeriod: 0 });
  const payload = Buffer.alloc(RETAINED.payloadBytes);
  for (let i = 0; i < RETAINED.messages; i++)
    publisher.publish(`ret/${i % 100}/${i}`, payload, { qos: 0, retain: true });
  await publisher.endAsync();
  const clients = await Promise.all(
    Array.from({ length: RETAINED.clients }, () => connectAsync(url, { reconnectPeriod: 0 })),
  );
  await Promise.all(clients.map((client) => client.subscribeAsync(RETAINED.filters, { qos: 0 })));
  await Promise.all(clients.map((client) => client.endAsync(true)));
}

const DEAF = { subscribers: 100, messages: 3_000, payloadBytes: 10_000 };

/** Subscribers to `#` that stop reading, then a publisher sending to them all. */
async function floodDeafSubscribers(url: string, port: number, held: Socket[]): Promise<void> {
  const subscribe = generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] });
  for (let i = 0; i < DEAF.subscribers; i++) {
    const socket = rawClient(port, Buffer.concat([CONNECT, subscribe]));
    held.push(socket);
    socket.pause();
  }
  await sleep(500);
  const publisher = await connectAsync(url, { reconnectPeriod: 0 });
  const payload = Buffer.alloc(DEAF.payloadBytes);
  for (let n = 0; n < DEAF.messages; n++) await publisher.publishAsync('app/loud', payload, { qos: 1 });
  await publisher.endAsync();
}

interface FloodRun {
  readonly flood: string;
  readonly idleDelayMs: number;
  readonly delayMs: number;
  readonly delayP99Ms: number;
  readonly idleRss: number;
  readonly peakRss: number;
}

/** A fresh agent, settled and read idle, then `flood`, read again. */
async function underFlood(
  flood: string,
  run: (endpoint: { url: string; port: number; held: Socket[] }) => Promise<void>,
): Promise<FloodRun> {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-bench-flood-'));
  let agent: BenchChild | undefined;
  const held: Socket[] = [];
  try {
    agent = startChild(process.execPath, [CLI_PATH, 'agent', '--config', writeAgentConfig(dir, true)]);
    const socket = join(dir, 'control.sock');
    await waitUntilReady(agent, socket);
    await sleep(SETTLE_MS);
    const idle = await status(socket);
    const idleRss = vmRssBytes(agent);
    const listen = idle.mqtt.listen ?? '';
    let peakRss = idleRss;
    const running = agent;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, vmRssBytes(running));
    }, 50);
    try {
      await run({ url: `mqtt://${listen}`, port: Number(/:(\d+)$/.exec(listen)?.[1]), held });
      // Subscriptions leave the trie a batch per turn, queues drain: let that run before the readings.
      await sleep(2_000);
    } finally {
      clearInterval(sampler);
    }
    const flooded = await status(socket);
    return {
      flood,
      idleDelayMs: idle.event_loop.delay_max_ms,
      delayMs: flooded.event_loop.delay_max_ms,
      delayP99Ms: flooded.event_loop.delay_p99_ms,
      idleRss,
      peakRss,
    };
  } finally {
    for (const socket of held) socket.destroy();
    if (agent !== undefined) await withTimeout(stopChild(agent), STOP_GRACE_MS * 2, 'stopping the agent');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function floodRows(): Promise<ResultRow[]> {
  const runs = [
    await underFlood('unfinished', async ({ port, held }) => {
      held.push(...holdUnfinished(port));
    }),
    await underFlood('subscriptions', ({ url }) => subscribeAndLeave(url)),
    await underFlood('offline queues', ({ url }) => fillOfflineQueues(url)),
    await underFlood('retained', ({ url }) => subscribeToRetained(url)),
    await underFlood('deaf subscribers', ({ url, port, held }) => floodDeafSubscribers(url, port, held)),
  ];
  for (const run of runs) {
    process.stderr.write(
      `[21 ${run.flood}: loop max ${run.delayMs} ms (idle ${run.idleDelayMs}), RSS ${formatMegabytes(run.peakRss)} (idle ${formatMegabytes(run.idleRss)})] `,
    );
  }
  const slowest = runs.reduce((worst, run) => (run.delayMs > worst.delayMs ? run : worst));
  const largest = runs.reduce((worst, run) =>
    run.peakRss - run.idleRss > worst.peakRss - worst.idleRss ? run : worst,
  );
  return [
    {
      benchmark: `21a MQTT flood, worst (${slowest.flood}): loop delay`,
      nearmesh: `${formatMilliseconds(slowest.delayMs)} (p99 ${formatMilliseconds(slowest.delayP99Ms)})`,
      baseline: `idle ${formatMilliseconds(slowest.idleDelayMs)}`,
      ratio: formatTimes(slowest.delayMs / Math.max(slowest.idleDelayMs, 0.01)),
      goal: `≤ ${MAX_LOOP_DELAY_MS} ms (abs)`,
      pass: passMark(slowest.delayMs <= MAX_LOOP_DELAY_MS),
    },
    {
      benchmark: `21b MQTT flood, worst (${largest.flood}): RSS`,
      nearmesh: formatMegabytes(largest.peakRss),
      baseline: `idle ${formatMegabytes(largest.idleRss)}`,
      ratio: formatTimes(largest.peakRss / largest.idleRss),
      goal: `≤ idle + ${MAX_RSS_GROWTH_BYTES / 2 ** 20} MiB`,
      pass: passMark(largest.peakRss <= largest.idleRss + MAX_RSS_GROWTH_BYTES),
    },
  ];
}
