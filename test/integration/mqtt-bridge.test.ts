// The MQTT upstream bridge against a real mosquitto: forwarding with prefixes, loop prevention, the
// bounded offline queue, broker restarts with persistent sessions, resending unacknowledged QoS 1
// messages, and TLS. Each test gets its own mosquitto on a free port, in its own temp dir.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../agent/core/counters.js';
import {
  type BridgedMessage,
  UpstreamBridge,
  type UpstreamBridgeOptions,
  UpstreamConfigError,
} from '../../agent/gateway/upstream-bridge.js';
import { fromUpstreamPublish } from '../../agent/gateway/upstream-message.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A pino logger whose records land in an array, to check what is (and is not) logged. */
function capturingLogger() {
  const records: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        text.push(line);
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { log, records, text };
}

describe('UpstreamBridge options', () => {
  const base: UpstreamBridgeOptions = {
    url: 'mqtt://127.0.0.1:1883',
    clientId: 'c',
    originId: 'o',
    out: [],
    in: [],
  };

  it('rejects bad schemes, filters, prefixes and TLS on plain mqtt with a typed error', () => {
    const bad: Array<Partial<UpstreamBridgeOptions>> = [
      { url: 'ws://127.0.0.1:8080' },
      { url: 'tcp://127.0.0.1:1883' },
      { url: 'not a url with a p@ssword' },
      { out: ['a/#/b'] },
      { in: ['a+'] },
      { remotePrefix: 'site/+/' },
      { tls: { rejectUnauthorized: false } },
      { tls: { ca: Buffer.from('not a certificate') }, url: 'mqtts://127.0.0.1' },
      {
        tls: { cert: Buffer.from('not a certificate'), key: Buffer.from('no key') },
        url: 'mqtts://127.0.0.1',
      },
      { maxQueued: 0 },
      { reconnectMinMs: 500, reconnectMaxMs: 100 },
    ];
    for (const options of bad) {
      const attempt = () => new UpstreamBridge({ ...base, ...options });
      expect(attempt, JSON.stringify(options)).toThrow(UpstreamConfigError);
    }
    const bridge = new UpstreamBridge({ ...base, url: 'mqtt://user:hunter2@[::1]' });
    expect(bridge.state()).toEqual({
      connected: false,
      subscribed: false,
      queued: 0,
      inflight: 0,
      url: 'mqtt://[::1]:1883',
    });
    let code: string | undefined;
    try {
      new UpstreamBridge({ ...base, url: 'http://x' });
    } catch (error) {
      code = (error as UpstreamConfigError).code;
    }
    expect(code).toBe('mqtt-upstream-config');
  });

  it('drops malformed input from upstream instead of throwing', () => {
    const rules = { prefix: 'site/', filters: ['#'], originId: 'me' };
    const packet = { qos: 1 as const, retain: false };
    expect(fromUpstreamPublish('other/x', Buffer.alloc(0), packet, rules)).toBe('bad_topic');
    expect(fromUpstreamPublish('site/', Buffer.alloc(0), packet, rules)).toBe('bad_topic');
    expect(fromUpstreamPublish('site/a\uFFFD', Buffer.alloc(0), packet, rules)).toBe('bad_topic');
    const own = { ...packet, properties: { userProperties: { 'nearmesh-origin': ['x', 'me'] } } };
    expect(fromUpstreamPublish('site/a', Buffer.alloc(0), own, rules)).toBe('loop');
    expect(fromUpstreamPublish('site/a', Buffer.alloc(0), packet, rules)).toMatchObject({ topic: 'a' });
  });
});

describeWhenAvailable('MQTT upstream bridge against mosquitto', missingMosquittoTools(), () => {
  let dir: string;
  let broker: Mosquitto;
  const bridges: UpstreamBridge[] = [];
  const clients: MqttClient[] = [];

  async function startBroker(tls?: Mosquitto['tls'], extra: readonly string[] = []): Promise<void> {
    broker = new Mosquitto(dir, await freePort(), tls, extra);
    await broker.start();
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearmesh-bridge-'));
  });

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((b) => b.stop()));
    for (const c of clients.splice(0)) c.end(true);
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function bridge(options: Partial<UpstreamBridgeOptions> & { originId: string }): UpstreamBridge {
    const b = new UpstreamBridge({
      url: `mqtt://127.0.0.1:${broker.port}`,
      clientId: `bridge-${options.originId}`,
      out: [],
      in: [],
      counters: new Counters(),
      reconnectMinMs: 25,
      reconnectMaxMs: 200,
      connectTimeoutMs: 2000,
      ...options,
    });
    bridges.push(b);
    return b;
  }

  function received(b: UpstreamBridge): BridgedMessage[] {
    const messages: BridgedMessage[] = [];
    b.on('message', (m) => messages.push(m));
    return messages;
  }

  async function started(b: UpstreamBridge): Promise<UpstreamBridge> {
    b.start();
    await until('bridge connected and subscribed', () => b.state().subscribed, { timeoutMs: 5000 });
    return b;
  }

  /** A plain mqtt.js client watching the upstream side, to see exactly what the bridge published. */
  async function observer(filter: string) {
    const c = await connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    clients.push(c);
    const seen: Array<{ topic: string; payload: string; origin: unknown }> = [];
    c.on('message', (topic, payload, packet) =>
      seen.push({
        topic,
        payload: payload.toString(),
        origin: packet.properties?.userProperties?.['nearmesh-origin'],
      }),
    );
    await c.subscribeAsync(filter, { qos: 1 });
    return { client: c, seen };
  }

  const message = (topic: string, payload: string, extra: Partial<BridgedMessage> = {}): BridgedMessage => ({
    topic,
    payload: Buffer.from(payload),
    qos: 1,
    retain: false,
    ...extra,
  });

  it('forwards matching topics with the prefix and delivers them prefix-stripped with their origin', async () => {
    await startBroker();
    const logs = capturingLogger();
    const a = await started(
      bridge({
        originId: 'peer-a',
        url: `mqtt://bridge-user:s3cret-pw@127.0.0.1:${broker.port}`,
        out: ['sensors/#'],
        remotePrefix: 'site-a/',
        log: logs.log,
      }),
    );
    const b = bridge({ originId: 'peer-b', in: ['sensors/+/temp'], remotePrefix: 'site-a/' });
    const atB = received(b);
    await started(b);
    const upstream = await observer('#');

    expect(a.matchesOut('sensors/kitchen/temp')).toBe(true);
    expect(a.matchesOut('office/lamp')).toBe(false);
    expect(a.forward(message('office/lamp', 'no'))).toBe(false);
    const properties = {
      contentType: 'text/plain',
      userProperties: { unit: 'C' },
      responseTopic: 'replies/1',
      correlationData: Buffer.from('c1'),
    };
    expect(a.forward(message('sensors/kitchen/temp', '21.5', { properties }))).toBe(true);
    expect(a.forward(message('sensors/kitchen/humidity', '40', { qos: 0 }))).toBe(true);
    // A last message, forwarded after them: once it is through, anything else they brought is too.
    expect(a.forward(message('sensors/hall/temp', 'last'))).toBe(true);

    await until('the last message upstream and at B', () =>
      [upstream.seen, atB].every((seen) => seen.some((m) => m.topic.endsWith('sensors/hall/temp'))),
    );
    expect(upstream.seen).toEqual([
      { topic: 'site-a/sensors/kitchen/temp', payload: '21.5', origin: 'peer-a' },
      { topic: 'site-a/sensors/kitchen/humidity', payload: '40', origin: 'peer-a' },
      { topic: 'site-a/sensors/hall/temp', payload: 'last', origin: 'peer-a' },
    ]);
    expect(atB.map((m) => m.topic)).toEqual(['sensors/kitchen/temp', 'sensors/hall/temp']);
    expect(atB[0]).toMatchObject({ topic: 'sensors/kitchen/temp', qos: 1, retain: false, origin: 'peer-a' });
    expect(atB[0]?.payload.toString()).toBe('21.5');
    expect(atB[0]?.properties).toEqual(properties); // origin stamp removed, response topic stripped
    await until('every forward acknowledged', () => a.state().inflight === 0);
    expect(a.counters.get('mqtt.upstream.forwarded')).toBe(3);
    expect(a.counters.get('mqtt.upstream.connects')).toBe(1);
    expect(b.counters.get('mqtt.upstream.received')).toBe(2);

    // The password never shows in state or in the log.
    expect(JSON.stringify(a.state())).not.toContain('s3cret');
    expect(a.state().url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(logs.text.join('')).not.toContain('s3cret');
    expect(logs.records.filter((r) => r.msg === 'mqtt upstream connected')).toHaveLength(1);
  });

  it('never takes its own messages back, by no-local and by the origin stamp', async () => {
    await startBroker();
    const a = bridge({ originId: 'peer-a', out: ['loop/#'], in: ['loop/#'] });
    const atA = received(a);
    await started(a);
    const upstream = await observer('loop/#');

    a.forward(message('loop/1', 'mine'));
    await until('loop/1 upstream', () => upstream.seen.length === 1);
    expect(atA).toEqual([]);

    // The same agent's message arriving through another connection is recognised by its stamp.
    const stamped = (origin: string) => ({
      qos: 1 as const,
      properties: { userProperties: { 'nearmesh-origin': origin } },
    });
    await upstream.client.publishAsync('loop/2', 'echo', stamped('peer-a'));
    await upstream.client.publishAsync('loop/3', 'theirs', stamped('peer-x'));
    // loop/3 left the broker after loop/1 and loop/2: once it is at A, they have come or never will.
    await until('loop/3 at A', () => atA.some((m) => m.topic === 'loop/3'));
    expect(atA.map((m) => [m.topic, m.origin])).toEqual([['loop/3', 'peer-x']]);
    // One drop, loop/2's: no-local kept loop/1 from ever coming back (the broker never sent it).
    expect(a.counters.get('mqtt.upstream.dropped_loop')).toBe(1);

    // What came from upstream is never exported again.
    expect(a.forward(atA[0] as BridgedMessage)).toBe(false);
    expect(a.counters.get('mqtt.upstream.not_reexported')).toBe(1);
  });

  it('drops upstream input outside the prefix rules or the `in` filters, and counts it', async () => {
    await startBroker();
    const upstream = await observer('unused');

    // Empty once the prefix is stripped: not a topic.
    const b = bridge({ originId: 'peer-b', in: ['#'], remotePrefix: 'p/' });
    const atB = received(b);
    await started(b);
    await upstream.client.publishAsync('p/', 'empty after strip', { qos: 1 });
    await upstream.client.publishAsync('p/a/ok', 'fine', { qos: 1 });
    // Published in this order: once a/ok is at B, the first one has come and gone.
    await until('a/ok at B', () => atB.some((m) => m.topic === 'a/ok'));
    expect(atB.map((m) => m.topic)).toEqual(['a/ok']);
    expect(b.counters.get('mqtt.upstream.dropped_bad_topic')).toBe(1);

    // A first run subscribed to more than the second run wants: the session keeps the old subscription,
    // which still delivers; the bridge drops what its `in` filters no longer cover.
    const first = await started(
      bridge({ originId: 'peer-c', clientId: 'stale', in: ['a/#', 'b/#'], remotePrefix: 'p/' }),
    );
    await first.stop();
    const narrow = bridge({ originId: 'peer-c', clientId: 'stale', in: ['a/#'], remotePrefix: 'p/' });
    const atNarrow = received(narrow);
    await started(narrow);
    await upstream.client.publishAsync('p/b/stale', 'x', { qos: 1 });
    await upstream.client.publishAsync('p/a/ok', 'y', { qos: 1 });
    // Published in this order: once a/ok is there, the stale one has come and gone.
    await until('a/ok at the narrower bridge', () => atNarrow.some((m) => m.topic === 'a/ok'));
    expect(atNarrow.map((m) => m.topic)).toEqual(['a/ok']);
    expect(narrow.counters.get('mqtt.upstream.dropped_unmatched')).toBe(1);
  });

  it('bounds the offline queue, dropping the oldest, and flushes the rest in order', async () => {
    await startBroker();
    const logs = capturingLogger();
    const a = await started(bridge({ originId: 'peer-a', out: ['q/#'], maxQueued: 5, log: logs.log }));
    const b = bridge({ originId: 'peer-b', in: ['q/#'] });
    const atB = received(b);
    await started(b);

    await broker.stop();
    await until(
      '!a.state().connected && !b.state().connected',
      () => !a.state().connected && !b.state().connected,
    );
    for (let i = 0; i < 10; i++) expect(a.forward(message(`q/${i}`, String(i)))).toBe(true);
    expect(a.state()).toMatchObject({ connected: false, queued: 5 });
    expect(a.counters.get('mqtt.upstream.dropped_queue_full')).toBe(5);
    await until('several failed reconnects', () => a.counters.get('mqtt.upstream.reconnect_attempts') > 2);

    await broker.start();
    await until('queued messages delivered', () => atB.length >= 5, { timeoutMs: 5000 });
    // A message forwarded now goes after the queue: once it is at B, nothing of the queue is still coming.
    a.forward(message('q/after', 'after'));
    await until('the message after the queue', () => atB.some((m) => m.topic === 'q/after'));
    expect(atB.map((m) => m.payload.toString())).toEqual(['5', '6', '7', '8', '9', 'after']);
    await until('every message acknowledged', () => a.state().inflight === 0);
    expect(a.state()).toMatchObject({ connected: true, queued: 0, inflight: 0 });
    // One line per state change, however many retries happened in between.
    expect(a.counters.get('mqtt.upstream.reconnect_attempts')).toBeGreaterThan(2);
    const lines = logs.records.map((r) => r.msg);
    expect(
      lines.filter((m) => m === 'mqtt upstream connection lost, reconnecting with backoff'),
    ).toHaveLength(1);
    expect(lines.filter((m) => m === 'mqtt upstream connected')).toHaveLength(2);
    expect(lines.filter((m) => m === 'mqtt upstream error').length).toBeLessThanOrEqual(2);
  });

  it('loses no QoS 1 message across a broker restart: persistent sessions on both sides', async () => {
    await startBroker();
    const a = await started(bridge({ originId: 'peer-a', out: ['r/#'] }));
    const logs = capturingLogger();
    const b = bridge({ originId: 'peer-b', in: ['r/#'], log: logs.log });
    const atB = received(b);
    await started(b);

    await broker.stop(); // SIGTERM: mosquitto saves B's session (subscription included)
    await until(
      '!a.state().connected && !b.state().connected',
      () => !a.state().connected && !b.state().connected,
    );
    for (let i = 0; i < 20; i++) a.forward(message(`r/${i}`, String(i)));
    await broker.start();

    await until('all 20 delivered', () => atB.length >= 20, { timeoutMs: 8000 });
    // One more, sent after them: once it is at B, no copy of the 20 is still coming.
    a.forward(message('r/after', 'after'));
    await until('the message after them', () => atB.some((m) => m.topic === 'r/after'));
    expect(atB.map((m) => m.payload.toString())).toEqual([
      ...Array.from({ length: 20 }, (_, i) => String(i)),
      'after',
    ]);
    expect(atB.every((m) => m.origin === 'peer-a')).toBe(true);
    // B's session (and subscription) came back from mosquitto's persistence file.
    const connects = logs.records.filter((r) => r.msg === 'mqtt upstream connected');
    expect(connects.map((r) => r.sessionPresent)).toEqual([false, true]);
    await until('every forward acknowledged', () => a.state().inflight === 0);
    expect(a.counters.get('mqtt.upstream.forwarded')).toBe(21); // the 20 and the one after
  });

  it('resends QoS 1 messages that were in flight when the connection broke', async () => {
    await startBroker();
    const proxy = await cuttableProxy(broker.port);
    try {
      const a = await started(
        bridge({ originId: 'peer-a', out: ['f/#'], url: `mqtt://127.0.0.1:${proxy.port}` }),
      );
      const b = bridge({ originId: 'peer-b', in: ['f/#'] });
      const atB = received(b);
      await started(b);

      proxy.swallow = true; // PUBLISH packets leave mqtt.js but never reach mosquitto: no PUBACK
      for (let i = 0; i < 3; i++) a.forward(message(`f/${i}`, String(i)));
      await until('the three publishes swallowed by the proxy', () =>
        ['f/0', 'f/1', 'f/2'].every((topic) => proxy.swallowed().includes(topic)),
      );
      expect(a.state()).toMatchObject({ connected: true, queued: 0, inflight: 3 });
      expect(atB).toEqual([]);

      proxy.swallow = false;
      proxy.cut();
      await until('in-flight messages resent', () => atB.length >= 3, { timeoutMs: 5000 });
      // One more, sent after the resends: once it is at B, no further copy is coming.
      a.forward(message('f/after', 'after'));
      await until('the message after them', () => atB.some((m) => m.topic === 'f/after'));
      expect(atB.map((m) => m.payload.toString())).toEqual(['0', '1', '2', 'after']);
      await until('every message acknowledged', () => a.state().inflight === 0);
      expect(a.state()).toMatchObject({ connected: true, inflight: 0 });
      expect(a.counters.get('mqtt.upstream.forwarded')).toBe(4); // the 3 and the one after
      expect(a.counters.get('mqtt.upstream.requeued')).toBe(0); // mqtt.js's store resent them, not our queue
      expect(a.counters.get('mqtt.upstream.connects')).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it("respects the upstream's limits instead of getting disconnected over them", async () => {
    await startBroker(undefined, ['max_packet_size 2000']);
    const a = await started(bridge({ originId: 'peer-a', out: ['big/#'] }));
    const b = bridge({ originId: 'peer-b', in: ['big/#'] });
    const atB = received(b);
    await started(b);
    a.forward(message('big/1', 'x'.repeat(3000)));
    a.forward(message('big/2', 'small'));
    // Forwarded in this order: once big/2 is at B, big/1 has come or never will.
    await until('big/2 at B', () => atB.some((m) => m.topic === 'big/2'));
    expect(atB.map((m) => m.topic)).toEqual(['big/2']);
    expect(a.counters.get('mqtt.upstream.dropped_too_large')).toBe(1);
    expect(a.counters.get('mqtt.upstream.connects')).toBe(1);
  });

  describe('over TLS', () => {
    let certs: string;
    let ca: Buffer;

    beforeAll(async () => {
      certs = await mkdtemp(join(tmpdir(), 'nearmesh-bridge-certs-'));
      ca = await makeCertificates(certs);
    });

    afterAll(async () => {
      await rm(certs, { recursive: true, force: true });
    });

    async function startTlsBroker(): Promise<number> {
      const tlsPort = await freePort();
      await startBroker({
        port: tlsPort,
        ca: join(certs, 'ca.pem'),
        cert: join(certs, 'server.pem'),
        key: join(certs, 'server.key'),
      });
      return tlsPort;
    }

    it('connects with the CA and forwards', async () => {
      const tlsPort = await startTlsBroker();
      const a = bridge({
        originId: 'peer-a',
        url: `mqtts://127.0.0.1:${tlsPort}`,
        tls: { ca },
        out: ['t/#'],
      });
      await started(a);
      const b = bridge({ originId: 'peer-b', in: ['t/#'] });
      const atB = received(b);
      await started(b);
      a.forward(message('t/secure', 'ok'));
      await until('the message at B', () => atB.length === 1);
      expect(atB[0]).toMatchObject({ topic: 't/secure', origin: 'peer-a' });
    });

    it('does not connect to a certificate it cannot verify, and says so once', async () => {
      const tlsPort = await startTlsBroker();
      const logs = capturingLogger();
      const a = bridge({
        originId: 'peer-a',
        url: `mqtts://127.0.0.1:${tlsPort}`,
        out: ['t/#'],
        log: logs.log,
      });
      const states: boolean[] = [];
      a.on('state', (s) => states.push(s.connected));
      a.start();
      expect(a.forward(message('t/x', 'queued'))).toBe(true);
      await until('several attempts', () => a.counters.get('mqtt.upstream.reconnect_attempts') >= 3, {
        timeoutMs: 5000,
      });
      expect(a.state()).toMatchObject({ connected: false, queued: 1 });
      expect(states).toEqual([]);
      expect(a.counters.get('mqtt.upstream.connects')).toBe(0);
      expect(a.counters.get('mqtt.upstream.errors')).toBeGreaterThanOrEqual(3);
      const errors = logs.records.filter((r) => r.msg === 'mqtt upstream error');
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(errors[0])).toMatch(/self.signed|unable to (verify|get)/i);
    });
  });

  /** Generates a CA and a server certificate for 127.0.0.1 / localhost; returns the CA's PEM. */
  async function makeCertificates(into: string): Promise<Buffer> {
    // Paths come from mkdtemp (no spaces), so each command line splits on spaces.
    const openssl = (args: string) => run('openssl', args.split(' '));
    const ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
    await writeFile(join(into, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await openssl(
      `req -x509 ${ec} -keyout ${into}/ca.key -out ${into}/ca.pem -days 2 -subj /CN=nearmesh-test-ca`,
    );
    await openssl(`req ${ec} -keyout ${into}/server.key -out ${into}/server.csr -subj /CN=127.0.0.1`);
    await openssl(
      `x509 -req -in ${into}/server.csr -CA ${into}/ca.pem -CAkey ${into}/ca.key -CAcreateserial ` +
        `-out ${into}/server.pem -days 2 -extfile ${into}/ext.cnf`,
    );
    return readFile(join(into, 'ca.pem'));
  }
});

/**
 * A TCP proxy in front of the broker that can swallow what the client sends (so QoS 1 publishes stay
 * unacknowledged) and cut every connection (so the client must reconnect).
 */
async function cuttableProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  const state = { swallow: false, swallowed: '' };
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (!state.swallow) upstream.write(chunk);
      else state.swallowed += chunk.toString('latin1');
    });
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    get swallow() {
      return state.swallow;
    },
    set swallow(value: boolean) {
      state.swallow = value;
    },
    /** What it swallowed, as latin1 text. */
    swallowed: () => state.swallowed,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
