// The MQTT gateway's broker against real clients: mqtt.js (3.1.1 and 5.0), the mosquitto command-line
// clients, and raw TCP sockets speaking mqtt-packet (or garbage).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import type { PublishMeta } from '../../agent/gateway/broker.js';
import { collectAs } from '../support/mqtt-clients.js';
import { brokerPerTest, connectPacket, type RawClient } from '../support/mqtt-raw.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const run = promisify(execFile);

const under = brokerPerTest({ maxPacketSize: 64 * 1024 });

function client(version: 4 | 5, options: IClientOptions = {}): Promise<MqttClient> {
  return under.clients.connect(under.port, version, options);
}

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

function collect(c: MqttClient): Received[] {
  return collectAs(c, (topic, payload, packet) => ({
    topic,
    payload: payload.toString(),
    retain: packet.retain,
    qos: packet.qos,
  }));
}

function raw(version: 4 | 5 = 4): Promise<RawClient> {
  return under.raw(version);
}

for (const version of [4, 5] as const) {
  describe(`MQTT ${version === 4 ? '3.1.1' : '5.0'} with mqtt.js`, () => {
    it('routes publishes through wildcard subscriptions, not $-topics through first-level wildcards', async () => {
      const sub = await client(version);
      const received = collect(sub);
      await sub.subscribeAsync(['home/+/temp', 'office/#', '#'], { qos: 1 });
      const seen: Array<{ topic: string; meta: PublishMeta }> = [];
      under.broker.onPublish((topic, _payload, meta) => {
        seen.push({ topic, meta });
      });

      const pub = await client(version, { clientId: `pub-${version}` });
      await pub.publishAsync('home/kitchen/temp', '21.5', { qos: 1 });
      await pub.publishAsync('$SYS/secret', 'no');
      await until('both publishes at the broker', () => seen.length === 2);
      expect(seen[0]).toMatchObject({
        topic: 'home/kitchen/temp',
        meta: { clientId: `pub-${version}`, qos: 1, retain: false, will: false, protocolVersion: version },
      });

      // The agent side publishes too, after them: by the time it arrives, they have arrived as well.
      under.broker.publish('office/lamp', 'on', { qos: 1 });
      await until('the agent-side publish', () => received.some((r) => r.topic === 'office/lamp'));
      // Overlapping subscriptions ('home/+/temp' and '#') deliver once; '$SYS/secret' not through '#'.
      expect(received).toHaveLength(2);
      expect(received[0]).toEqual({ topic: 'home/kitchen/temp', payload: '21.5', retain: false, qos: 1 });
      expect(received[1]).toMatchObject({ topic: 'office/lamp', payload: 'on', qos: 1 });

      await sub.unsubscribeAsync(['office/#', '#']);
      under.broker.publish('office/lamp', 'off');
      under.broker.publish('home/hall/temp', '19');
      await until('received.length === 3', () => received.length === 3);
      expect(received[2]).toMatchObject({ topic: 'home/hall/temp', payload: '19' });
    });

    it('delivers retained messages on subscribe and clears them with an empty payload', async () => {
      const pub = await client(version);
      await pub.publishAsync('state/door', 'open', { qos: 1, retain: true });
      await pub.publishAsync('state/window', 'shut', { qos: 0, retain: true });

      const sub = await client(version);
      const received = collect(sub);
      await sub.subscribeAsync('state/#', { qos: 1 });
      await until('received.length === 2', () => received.length === 2);
      expect(received.map((r) => [r.topic, r.payload, r.retain]).sort()).toEqual([
        ['state/door', 'open', true],
        ['state/window', 'shut', true],
      ]);

      // A live delivery of a retained publish to an existing subscription is not flagged retained (3.1.1).
      await pub.publishAsync('state/door', '', { qos: 1, retain: true });
      await until('received.length === 3', () => received.length === 3);
      expect(received[2]).toMatchObject({ topic: 'state/door', payload: '', retain: false });

      const late = await client(version);
      const lateReceived = collect(late);
      await late.subscribeAsync('state/#');
      // A live publish after the subscription arrives after every retained message it got.
      await pub.publishAsync('state/marker', 'after', { qos: 1 });
      await until('the live publish', () => lateReceived.some((r) => r.topic === 'state/marker'));
      expect(lateReceived).toEqual([
        { topic: 'state/window', payload: 'shut', retain: true, qos: 0 },
        { topic: 'state/marker', payload: 'after', retain: false, qos: 0 },
      ]);
    });

    it('queues QoS 1 messages for an offline persistent session and delivers them on reconnect', async () => {
      const clientId = `persistent-${version}`;
      const persistent: IClientOptions =
        version === 5
          ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
          : { clientId, clean: false };
      const first = await client(version, persistent);
      await first.subscribeAsync('jobs/#', { qos: 1 });
      await first.endAsync(true);

      const pub = await client(version);
      for (let i = 0; i < 3; i++) await pub.publishAsync(`jobs/${i}`, `job ${i}`, { qos: 1 });
      await pub.publishAsync('jobs/lossy', 'qos0 is not queued', { qos: 0 });

      const received: Received[] = [];
      const again = connect(`mqtt://127.0.0.1:${under.port}`, {
        protocolVersion: version,
        reconnectPeriod: 0,
        ...persistent,
        manualConnect: true,
      });
      again.on('message', (topic, payload, packet) =>
        received.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }),
      );
      const connected = new Promise<boolean>((resolve) =>
        again.once('connect', (connack) => resolve(connack.sessionPresent)),
      );
      again.connect();
      under.clients.add(again);
      expect(await connected).toBe(true);
      // A publish once it is back arrives after everything queued for it.
      await pub.publishAsync('jobs/live', 'after', { qos: 1 });
      await until('the live publish', () => received.some((r) => r.topic === 'jobs/live'));
      expect(received.map((r) => [r.topic, r.payload, r.qos])).toEqual([
        ['jobs/0', 'job 0', 1],
        ['jobs/1', 'job 1', 1],
        ['jobs/2', 'job 2', 1],
        ['jobs/live', 'after', 1],
      ]);

      // A clean session drops it all.
      await again.endAsync(true);
      const fresh = await client(version, { clientId, clean: true });
      expect(under.broker.stats().sessions).toBeGreaterThan(0);
      fresh.end(true);
    });

    it('publishes the last will when the socket dies, not after DISCONNECT', async () => {
      const watcher = await client(version);
      const received = collect(watcher);
      await watcher.subscribeAsync('wills/#', { qos: 1 });
      const wills: PublishMeta[] = [];
      under.broker.onPublish((_topic, _payload, meta) => {
        if (meta.will) wills.push(meta);
      });

      const polite = await client(version, {
        will: { topic: 'wills/polite', payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      await polite.endAsync();
      const rude = await client(version, {
        clientId: `rude-${version}`,
        will: { topic: 'wills/rude', payload: Buffer.from('crashed'), qos: 1, retain: false },
      });
      rude.stream.destroy();
      await until('the will of the rude client', () => received.length === 1);
      // A publish after that arrives after anything else the two departures could bring.
      under.broker.publish('wills/marker', 'after', { qos: 1 });
      await until('the publish after it', () => received.some((r) => r.topic === 'wills/marker'));
      expect(received).toEqual([
        { topic: 'wills/rude', payload: 'crashed', retain: false, qos: 1 },
        { topic: 'wills/marker', payload: 'after', retain: false, qos: 1 },
      ]);
      expect(wills).toMatchObject([{ clientId: `rude-${version}`, will: true }]);
    });

    // MQTT 5 only: a 3.1.1 will has no properties.
    if (version === 5)
      it('forwards a will without its Will Delay Interval, keeping what a PUBLISH carries', async () => {
        const watcher = await client(version);
        const got: Record<string, unknown>[] = [];
        watcher.on('message', (_topic, _payload, packet) => got.push({ ...packet.properties }));
        await watcher.subscribeAsync('wills/#', { qos: 1 });
        const dying = await client(version, {
          will: {
            topic: 'wills/props',
            payload: Buffer.from('gone'),
            qos: 1,
            retain: false,
            properties: {
              willDelayInterval: 1,
              contentType: 'text/plain',
              userProperties: { room: 'hall' },
              payloadFormatIndicator: true,
            },
          },
        });
        dying.stream.destroy();
        await until('the will', () => got.length === 1);
        expect(got[0]).toMatchObject({
          contentType: 'text/plain',
          userProperties: { room: 'hall' },
          payloadFormatIndicator: true,
        });
        expect(got[0]).not.toHaveProperty('willDelayInterval');
        // The subscriber's connection took it as a valid PUBLISH and goes on.
        under.broker.publish('wills/after', 'still here', { qos: 1 });
        await until('a publish after it', () => got.length === 2);
        expect(watcher.connected).toBe(true);
      });

    it('carries QoS 2 end to end, exactly once', async () => {
      const sub = await client(version);
      const received = collect(sub);
      const granted = await sub.subscribeAsync('q2/#', { qos: 2 });
      expect(granted[0]?.qos).toBe(2);
      const pub = await client(version);
      await pub.publishAsync('q2/x', 'exactly once', { qos: 2 });
      // The next publish arrives after any copy of the first.
      await pub.publishAsync('q2/next', 'after', { qos: 2 });
      await until('the next publish', () => received.some((r) => r.topic === 'q2/next'));
      expect(received).toEqual([
        { topic: 'q2/x', payload: 'exactly once', retain: false, qos: 2 },
        { topic: 'q2/next', payload: 'after', retain: false, qos: 2 },
      ]);
    });

    it('refuses wrong credentials and accepts right ones', async () => {
      await under.restart({ auth: { username: 'app', password: 's3cret' } });
      await expect(client(version, { username: 'app', password: 'wrong' })).rejects.toThrow();
      await expect(client(version)).rejects.toThrow();
      const ok = await client(version, { username: 'app', password: 's3cret' });
      expect(ok.connected).toBe(true);
      expect(under.broker.counters.get('mqtt.auth_failed')).toBe(2);
    });
  });
}

describe('raw connections', () => {
  it('refuses protocol levels other than 4 and 5 with return code 1', async () => {
    for (const level of [3, 6]) {
      const c = await raw();
      // A hand-made CONNECT: "MQTT" (or "MQIsdp" for 3.1), the level, clean flag, keepalive 0, client id "x".
      const name = level === 3 ? 'MQIsdp' : 'MQTT';
      const body = Buffer.concat([
        Buffer.from([0, name.length]),
        Buffer.from(name),
        Buffer.from([level, 0x02, 0, 0, 0, 1]),
        Buffer.from('x'),
      ]);
      c.socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
      await c.closed;
      expect(Buffer.concat(c.bytes)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x01]));
    }
    expect(under.broker.counters.get('mqtt.unsupported_protocol')).toBe(2);
  });

  it('assigns client ids to empty ones where allowed', async () => {
    const v5 = await raw(5);
    v5.send(connectPacket(5, { clientId: '' }));
    const connack = (await v5.next('connack')) as mqttPacket.IConnackPacket;
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.assignedClientIdentifier).toMatch(/^nearmesh-/);
    expect(connack.properties?.maximumPacketSize).toBe(64 * 1024);

    const v4clean = await raw(4);
    v4clean.send(connectPacket(4, { clientId: '' }));
    expect(((await v4clean.next('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(0);

    const v4persistent = await raw(4);
    // mqtt-packet refuses to encode this one: CONNECT 3.1.1, no flags (clean session 0), empty client id.
    v4persistent.socket.write(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 0, 0, 0]));
    expect(((await v4persistent.next('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(2);
    await v4persistent.closed;
  });

  it('closes a silent client after 1.5 x keep-alive and publishes its will', async () => {
    const watcher = await client(4);
    const received = collect(watcher);
    await watcher.subscribeAsync('ka/#');
    const c = await raw(4);
    const started = Date.now();
    c.send(
      connectPacket(4, {
        keepalive: 1,
        will: { topic: 'ka/silent', payload: Buffer.from('timed out'), qos: 0, retain: false },
      }),
    );
    await c.next('connack');
    await c.closed;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(3000);
    await until('received.length === 1', () => received.length === 1);
    expect(received[0]).toMatchObject({ topic: 'ka/silent', payload: 'timed out' });
    expect(under.broker.counters.get('mqtt.keepalive_timeouts')).toBe(1);

    // Activity (PINGREQ) keeps a client alive past 1.5 x keep-alive.
    const pinger = await raw(4);
    pinger.send(connectPacket(4, { keepalive: 1 }));
    await pinger.next('connack');
    for (let i = 0; i < 4; i++) {
      // Kept: time is the subject: a ping every 0.6 s for 2.4 s, past the 1.5 s a silent client gets.
      await new Promise((resolve) => setTimeout(resolve, 600));
      pinger.send({ cmd: 'pingreq' });
    }
    expect(pinger.packets.filter((p) => p.cmd === 'pingresp').length).toBeGreaterThanOrEqual(3);
    expect(pinger.socket.destroyed).toBe(false);
  });

  it('closes only the offending client on garbage, oversize packets and bad topics', async () => {
    const bystander = await client(5);
    const received = collect(bystander);
    await bystander.subscribeAsync('still/#');

    // Garbage before CONNECT: closed, counted.
    const garbage = await raw();
    const garbageStarted = Date.now();
    garbage.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await garbage.closed;
    expect(Date.now() - garbageStarted).toBeLessThan(1000);

    // A reserved packet type after CONNECT (MQTT 5): DISCONNECT 0x81 (malformed), then close.
    const malformed = await raw(5);
    malformed.send(connectPacket(5));
    await malformed.next('connack');
    malformed.socket.write(Buffer.from([0x00, 0x00]));
    expect(((await malformed.next('disconnect')) as mqttPacket.IDisconnectPacket).reasonCode).toBe(0x81);
    await malformed.closed;

    // A remaining length beyond the maximum packet size: DISCONNECT 0x95, from the header alone.
    const oversize = await raw(5);
    oversize.send(connectPacket(5));
    await oversize.next('connack');
    oversize.socket.write(Buffer.from([0x30, 0xff, 0xff, 0x7f])); // claims ~2 MiB
    expect(((await oversize.next('disconnect')) as mqttPacket.IDisconnectPacket).reasonCode).toBe(0x95);
    await oversize.closed;

    // Oversize from mqtt.js 3.1.1, a real payload: the connection just closes.
    const big = await client(4);
    big.on('error', () => {});
    const bigClosed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish('still/big', Buffer.alloc(100 * 1024));
    await bigClosed;

    // Invalid UTF-8 in a topic name, and a wildcard in a PUBLISH topic.
    const badUtf8 = await raw(4);
    badUtf8.send(connectPacket(4));
    await badUtf8.next('connack');
    badUtf8.socket.write(Buffer.from([0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 0x78]));
    await badUtf8.closed;
    const wildcard = await raw(4);
    wildcard.send(connectPacket(4));
    await wildcard.next('connack');
    wildcard.send({ cmd: 'publish', topic: 'still/+', payload: 'x', qos: 0, retain: false, dup: false });
    await wildcard.closed;

    // A fifth remaining-length byte.
    const longLength = await raw(4);
    longLength.socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await longLength.closed;

    expect(under.broker.counters.get('mqtt.malformed')).toBe(4);
    expect(under.broker.counters.get('mqtt.oversize')).toBe(2);
    expect(under.broker.counters.get('mqtt.protocol_errors')).toBe(1);

    await bystander.publishAsync('still/here', 'yes', { qos: 1 });
    await until('received.length === 1', () => received.length === 1);
    expect(received[0]).toMatchObject({ topic: 'still/here', payload: 'yes' });
    expect(bystander.connected).toBe(true);
  });

  it('does not crash when an onPublish listener throws', async () => {
    under.broker.onPublish(() => {
      throw new Error('listener bug');
    });
    const c = await client(4);
    await c.publishAsync('x/y', 'z', { qos: 1 });
    expect(under.broker.counters.get('mqtt.listener_errors')).toBe(1);
  });

  it('rejects invalid topics from the agent side', () => {
    expect(() => under.broker.publish('a/#', 'x')).toThrow(/invalid MQTT topic/);
  });
});

const mosquittoMissing = await (async () => {
  try {
    await run('sh', [
      '-c',
      'command -v mosquitto_pub && command -v mosquitto_sub && command -v mosquitto_rr',
    ]);
    return undefined;
  } catch {
    return 'mosquitto-clients (mosquitto_pub, mosquitto_sub, mosquitto_rr) not installed';
  }
})();

describeWhenAvailable('MQTT broker with mosquitto clients', mosquittoMissing, () => {
  for (const [flag, version] of [
    ['mqttv311', 4],
    ['mqttv5', 5],
  ] as const) {
    it(`mosquitto_sub receives what mosquitto_pub sends (${flag}), QoS 0/1/2 and retained`, async () => {
      const common = ['-h', '127.0.0.1', '-p', String(under.port), '-V', flag];
      await run('mosquitto_pub', [...common, '-t', 'mq/retained', '-m', 'kept', '-r', '-q', '1']);
      const sub = spawn('mosquitto_sub', [...common, '-t', 'mq/#', '-C', '4', '-v', '-W', '10', '-q', '1'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let stdout = '';
      sub.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      const exited = once(sub, 'exit');
      // The subscription exists once the retained message has been handed to it.
      await until('mosquitto_sub given the retained message', () => stdout.includes('mq/retained kept'));
      for (const qos of ['0', '1', '2']) {
        await run('mosquitto_pub', [...common, '-t', `mq/q${qos}`, '-m', `qos ${qos}`, '-q', qos]);
      }
      expect(await exited).toEqual([0, null]);
      expect(stdout.trim().split('\n')).toEqual([
        'mq/retained kept',
        'mq/q0 qos 0',
        'mq/q1 qos 1',
        'mq/q2 qos 2',
      ]);
      expect(under.broker.stats().clients).toBe(0);
      void version;
    });
  }

  it('mosquitto_rr gets a response from an agent-side responder (MQTT 5 properties forwarded)', async () => {
    under.broker.onPublish((topic, payload, meta) => {
      const responseTopic = meta.properties?.responseTopic;
      if (topic !== 'rpc/echo' || responseTopic === undefined) return;
      under.broker.publish(responseTopic, `echo: ${payload.toString()}`, {
        properties: { correlationData: meta.properties?.correlationData as Buffer },
      });
    });
    const { stdout } = await run('mosquitto_rr', [
      ...['-h', '127.0.0.1', '-p', String(under.port)],
      ...['-t', 'rpc/echo', '-e', 'rpc/reply', '-m', 'hello', '-W', '5'],
    ]);
    expect(stdout.trim()).toBe('echo: hello');
  });

  it('refuses mosquitto_pub with wrong credentials', async () => {
    await under.restart({ auth: { username: 'app', password: 'pw' } });
    const common = ['-h', '127.0.0.1', '-p', String(under.port), '-t', 't', '-m', 'x'];
    await expect(run('mosquitto_pub', [...common, '-u', 'app', '-P', 'bad'])).rejects.toThrow();
    await run('mosquitto_pub', [...common, '-u', 'app', '-P', 'pw']);
  });
});
