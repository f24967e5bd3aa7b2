// The MQTT clients of row 25, each in its own process so they do not share a core's turns with the bench:
// the same MQTT.js program against nearmesh's endpoint and against mosquitto. MQTT 5, clean sessions.
// Each mode prints JSON lines on stdout and exits when it is done; instants are the wall clock in ms
// (timeOrigin + now), comparable between the two processes on this machine:
//   publish   <url> <topic> <count> <bytes> <in flight>  <count> distinct payloads at QoS 1, the next sent
//                                                       as each PUBACK returns: {"published","ms","firstAtMs"}
//   subscribe <url> <filter> <count>                    {"subscribed":true} once its SUBACK granted QoS 1,
//                                                       {"received","lastAtMs"} once <count> distinct arrived,
//                                                       or fewer after 10 s without any
import { randomBytes } from 'node:crypto';
import { connectAsync, type IClientOptions } from 'mqtt';

const CLIENT: IClientOptions = { protocolVersion: 5, clean: true, reconnectPeriod: 0 };
/** A subscriber that has had nothing for this long gives up and reports what it got. */
const QUIET_MS = 10_000;

function print(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** `count` distinct payloads of `bytes` hex characters: row 17's lines, which do not compress. */
function distinctPayloads(count: number, bytes: number): Buffer[] {
  return Array.from({ length: count }, () => Buffer.from(randomBytes(bytes / 2).toString('hex')));
}

async function publish(
  url: string,
  topic: string,
  count: number,
  bytes: number,
  window: number,
): Promise<void> {
  const payloads = distinctPayloads(count, bytes);
  const client = await connectAsync(url, CLIENT);
  const firstAtMs = wallClockMs();
  const startNs = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acknowledged = 0;
    const sendNext = (): void => {
      const payload = payloads[sent++] as Buffer;
      // MQTT.js calls back on the PUBACK, with an error when its reason code is a refusal (MQTT 5).
      client.publish(topic, payload, { qos: 1 }, (error) => {
        if (error !== undefined && error !== null) {
          reject(error);
          return;
        }
        acknowledged++;
        if (sent < count) sendNext();
        else if (acknowledged === count) resolve();
      });
    };
    for (let n = 0; n < Math.min(window, count); n++) sendNext();
  });
  const ms = Number(process.hrtime.bigint() - startNs) / 1e6;
  print({ published: count, ms, firstAtMs });
  await client.endAsync();
}

async function subscribe(url: string, filter: string, count: number): Promise<void> {
  const client = await connectAsync(url, CLIENT);
  const seen = new Set<string>();
  let lastAtMs = 0;
  const done = (): void => {
    clearTimeout(quiet);
    print({ received: seen.size, lastAtMs });
    void client.endAsync();
  };
  // A broker drops a clean session's oldest QoS 1 messages once it is too far behind: say how many came.
  const quiet = setTimeout(done, QUIET_MS);
  client.on('message', (_topic, payload) => {
    seen.add(payload.toString('latin1'));
    lastAtMs = wallClockMs();
    if (seen.size === count) done();
    else quiet.refresh();
  });
  const [granted] = await client.subscribeAsync(filter, { qos: 1 });
  if (granted === undefined || granted.qos !== 1)
    throw new Error(`SUBACK for ${filter} granted ${JSON.stringify(granted)}`);
  print({ subscribed: true });
}

async function main(): Promise<void> {
  const [mode, url = '', topic = '', ...numbers] = process.argv.slice(2);
  const [count = 0, bytes = 32, window = 1] = numbers.map(Number);
  switch (mode) {
    case 'publish':
      return publish(url, topic, count, bytes, window);
    case 'subscribe':
      return subscribe(url, topic, count);
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((error: unknown) => {
  print({ error: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
