// Row 25: an app's QoS 1 publishes into the mesh through the agent's MQTT endpoint, against mosquitto's own
// QoS 1 throughput. The same MQTT.js program (mqtt-qos1-child.ts) publishes N distinct small payloads with a
// bounded window, timed from the first publish to the last PUBACK, while a QoS 1 subscriber counts them where
// they end up: nearmesh/send/rx on tx's endpoint, read on rx's nearmesh/inbox/#; a topic on one mosquitto.
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { AGENT_READY, clearInbox, JsonLines, type JsonRecord, skippedRows, timedRun } from './agent-pair.js';
import { type BenchAgent, clientOf, connectControl, type Polling, waitForLinks } from './bench-agents.js';
import { type BenchChild, startChild, stopChild } from './bench-child.js';
import { busyShare, machineTicks, processCpuMs } from './cpu-usage.js';
import { freePorts, Started } from './loopback-agents.js';
import { median } from './stats.js';
import { formatMilliseconds, formatPercent, formatPerSecond, formatTimes, type ResultRow } from './table.js';
import { sleep } from './timing.js';

export const MQTT_QOS1_MESSAGES = 10_000;
export const MQTT_QOS1_PAYLOAD_BYTES = 32;
export const MQTT_QOS1_WINDOW = 64;
export const MQTT_QOS1_RUNS = 3;
export const MQTT_QOS1_WARMUPS = 1;
const MOSQUITTO = '/usr/sbin/mosquitto';
const CHILD = fileURLToPath(new URL('./mqtt-qos1-child.js', import.meta.url));
const RUN_TIMEOUT_MS = 120_000;
const LINKED: Polling = { timeoutMs: 20_000, pollMs: 50 };
/**
 * Both brokers drop a session's oldest QoS 1 messages past 1,000 queued by default; a subscriber that falls
 * that far behind (it does at mosquitto's rate, on a busy machine) would then never count them all. So each
 * may queue a whole run.
 */
const QUEUED_FOR_SUBSCRIBER = MQTT_QOS1_MESSAGES;
/** Anonymous clients of the agents' loopback endpoints may send and read the inbox: nothing else. */
const AGENT_MQTT = [
  'listen = "127.0.0.1:0"',
  'anonymous = ["topic write nearmesh/send/#", "topic read nearmesh/inbox/#"]',
  `max_queued_messages = ${QUEUED_FOR_SUBSCRIBER}`,
];
const NAMES = [
  `25a MQTT QoS 1 publish, ${MQTT_QOS1_MESSAGES.toLocaleString('en-US')} × ${MQTT_QOS1_PAYLOAD_BYTES} B, ${MQTT_QOS1_WINDOW} in flight, to last PUBACK`,
  '25b the same, to the last at the QoS 1 subscriber',
];

/** Where one side's publisher sends and its subscriber listens, and the processes whose CPU it costs. */
interface Target {
  readonly name: string;
  readonly publishUrl: string;
  readonly topic: string;
  readonly subscribeUrl: string;
  readonly filter: string;
  readonly processes: readonly BenchChild[];
  /** After each run: what the side must forget before the next (rx's inbox holds 10,000 at most). */
  readonly reset: () => Promise<void>;
}

interface QosRun {
  /** First publish to last PUBACK, at the publisher. */
  readonly publishMs: number;
  /** First publish to the last distinct payload at the subscriber. */
  readonly deliveredMs: number;
  /** User + system CPU of the side's own processes (agents, or mosquitto) over the run. */
  readonly cpuMs: number;
}

function childArgs(...args: readonly (string | number)[]): string[] {
  return [CHILD, ...args.map(String)];
}

function failed(record: JsonRecord): boolean {
  return 'error' in record;
}

async function qos1Run(target: Target): Promise<QosRun> {
  const cpu = (): number => target.processes.reduce((sum, p) => sum + processCpuMs(p.child.pid ?? 0), 0);
  const subscriber = startChild(
    process.execPath,
    childArgs('subscribe', target.subscribeUrl, target.filter, MQTT_QOS1_MESSAGES),
  );
  try {
    const lines = new JsonLines(subscriber);
    const ready = await lines.waitFor(
      'MQTT subscriber',
      (r) => 'subscribed' in r || failed(r),
      LINKED.timeoutMs,
    );
    if (failed(ready.record)) throw new Error(`MQTT subscriber: ${String(ready.record.error)}`);
    const cpuBefore = cpu();
    const { record } = await timedRun({
      what: 'MQTT QoS 1 publisher',
      command: process.execPath,
      args: childArgs(
        'publish',
        target.publishUrl,
        target.topic,
        MQTT_QOS1_MESSAGES,
        MQTT_QOS1_PAYLOAD_BYTES,
        MQTT_QOS1_WINDOW,
      ),
      timeoutMs: RUN_TIMEOUT_MS,
      done: (result) => 'published' in result,
    });
    const last = await lines.waitFor('MQTT subscriber', (r) => 'received' in r || failed(r), RUN_TIMEOUT_MS);
    if (failed(last.record)) throw new Error(`MQTT subscriber: ${String(last.record.error)}`);
    if (last.record.received !== MQTT_QOS1_MESSAGES)
      throw new Error(
        `the subscriber got ${String(last.record.received)} of ${MQTT_QOS1_MESSAGES} (${target.name})`,
      );
    const run = {
      publishMs: Number(record.ms),
      deliveredMs: Number(last.record.lastAtMs) - Number(record.firstAtMs),
      cpuMs: cpu() - cpuBefore,
    };
    await target.reset();
    return run;
  } finally {
    await stopChild(subscriber);
  }
}

async function mqttUrl(agent: BenchAgent): Promise<string> {
  const status = (await clientOf(agent).request({ cmd: 'status' })) as { mqtt: { listen?: string } };
  if (!status.mqtt.listen) throw new Error(`${agent.name} serves no MQTT endpoint`);
  return `mqtt://${status.mqtt.listen}`;
}

/** tx and rx on loopback, linked (tx dials rx), each with an MQTT endpoint. */
async function meshTarget(started: Started): Promise<Target> {
  const meshKey = generateMeshKey();
  const [rxPort = 0, txPort = 0] = await freePorts(2);
  const receiver = started.agent({ name: 'rx', port: rxPort, dials: [], mqtt: AGENT_MQTT }, meshKey);
  const sender = started.agent({ name: 'tx', port: txPort, dials: [rxPort], mqtt: AGENT_MQTT }, meshKey);
  await Promise.all([connectControl(receiver, AGENT_READY), connectControl(sender, AGENT_READY)]);
  await waitForLinks(sender, [receiver.name], LINKED);
  await waitForLinks(receiver, [sender.name], LINKED);
  return {
    name: 'nearmesh',
    publishUrl: await mqttUrl(sender),
    topic: `nearmesh/send/${receiver.name}`,
    subscribeUrl: await mqttUrl(receiver),
    filter: 'nearmesh/inbox/#',
    processes: [sender, receiver],
    reset: () => clearInbox(receiver),
  };
}

/** Accepts a TCP connection on 127.0.0.1:`port` (mosquitto has bound its listener). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** mosquitto on a free loopback port: a listener, anonymous clients, the queue above; all else its default. */
async function mosquittoTarget(started: Started): Promise<Target> {
  const [port = 0] = await freePorts(1);
  const config = join(started.temporaryDir('nearmesh-bench-mosquitto-'), 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    `max_queued_messages ${QUEUED_FOR_SUBSCRIBER}`,
  ];
  writeFileSync(config, `${lines.join('\n')}\n`);
  const broker = startChild(MOSQUITTO, ['-c', config]);
  started.children.push(broker);
  const deadline = Date.now() + AGENT_READY.timeoutMs;
  while (!(await accepts(port))) {
    if (Date.now() > deadline)
      throw new Error(`mosquitto not listening: ${broker.output.trim().slice(-300)}`);
    await sleep(AGENT_READY.pollMs);
  }
  const url = `mqtt://127.0.0.1:${port}`;
  return {
    name: 'mosquitto',
    publishUrl: url,
    topic: 'bench/qos1',
    subscribeUrl: url,
    filter: 'bench/qos1',
    processes: [broker],
    reset: async () => {},
  };
}

export async function mqttQos1Rows(): Promise<ResultRow[]> {
  if (!existsSync(MOSQUITTO)) return skippedRows(NAMES, 'no mosquitto');
  const started = new Started();
  try {
    const mesh = await meshTarget(started);
    const mosquitto = await mosquittoTarget(started);
    const runs: { mesh: QosRun; mosquitto: QosRun }[] = [];
    const ticksBefore = machineTicks();
    for (let run = 0; run < MQTT_QOS1_WARMUPS + MQTT_QOS1_RUNS; run++) {
      const measured = { mesh: await qos1Run(mesh), mosquitto: await qos1Run(mosquitto) };
      if (run >= MQTT_QOS1_WARMUPS) runs.push(measured);
    }
    const busy = busyShare(ticksBefore, machineTicks());
    const list = (values: number[]): string => values.map((ms) => ms.toFixed(0)).join('/');
    const series = (pick: (run: QosRun) => number) => ({
      mesh: runs.map((run) => pick(run.mesh)),
      mosquitto: runs.map((run) => pick(run.mosquitto)),
    });
    const [puback, delivered, cpu] = [
      series((run) => run.publishMs),
      series((run) => run.deliveredMs),
      series((run) => run.cpuMs),
    ];
    process.stderr.write(
      `[runs ms: nearmesh PUBACK ${list(puback.mesh)}, at rx's subscriber ${list(delivered.mesh)}, tx+rx CPU ` +
        `${list(cpu.mesh)}; mosquitto PUBACK ${list(puback.mosquitto)}, at its subscriber ` +
        `${list(delivered.mosquitto)}, its CPU ${list(cpu.mosquitto)}; machine ${formatPercent(busy.share)} ` +
        `busy of ${busy.cores} cores] `,
    );
    const row = (benchmark: string, values: { mesh: number[]; mosquitto: number[] }): ResultRow => {
      const rate = (ms: number): number => (MQTT_QOS1_MESSAGES / ms) * 1000;
      const [meshMs, mosquittoMs] = [median(values.mesh), median(values.mosquitto)];
      return {
        benchmark,
        nearmesh: `${formatPerSecond(rate(meshMs))} (${formatMilliseconds(meshMs)})`,
        baseline: `mosquitto ${formatPerSecond(rate(mosquittoMs))} (${formatMilliseconds(mosquittoMs)})`,
        ratio: formatTimes(rate(meshMs) / rate(mosquittoMs)),
        goal: '— (info)',
        pass: '—',
      };
    };
    return [row(NAMES[0] as string, puback), row(NAMES[1] as string, delivered)];
  } finally {
    await started.stopAll();
  }
}
