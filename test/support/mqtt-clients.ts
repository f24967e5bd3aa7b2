// mqtt.js clients of the MQTT integration tests (the broker on its own, agents' endpoints): connecting,
// ending them all after the tests, collecting what they receive, and waiting for it.
import { connectAsync, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { AgentStatus } from '../../agent/api.js';
import type { AgentProcess } from './agent-process.js';

/**
 * An `[mqtt]` line that lets anonymous local clients use every topic, nearmesh/send and the inbox included:
 * for tests of what the endpoint does, not of who may use it (docs/MQTT.md, "Access control").
 */
export const ANONYMOUS_MAY_DO_ANYTHING = 'anonymous = ["topic readwrite #"]';

/** The clients a test file opened: connect() them, endAll() in its afterAll or afterEach. */
export class MqttClients {
  private readonly open: MqttClient[] = [];

  /** A client on 127.0.0.1:`port` (MQTT 3.1.1 is version 4), no reconnect; ended by endAll. */
  async connect(port: number, version: 4 | 5, options: IClientOptions = {}): Promise<MqttClient> {
    const c = await connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: version,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    this.open.push(c);
    return c;
  }

  /** A client connected some other way, ended by endAll too. */
  add(c: MqttClient): void {
    this.open.push(c);
  }

  endAll(): void {
    for (const c of this.open.splice(0)) c.end(true);
  }
}

/** The port of an agent's MQTT endpoint (it listens on port 0: read back from `status`). */
export async function mqttPort(agent: AgentProcess): Promise<number> {
  const status = await agent.json<AgentStatus>(['status']);
  if (status.mqtt.state !== 'on') throw new Error(`MQTT not served: ${JSON.stringify(status.mqtt)}`);
  return Number(status.mqtt.listen.split(':').at(-1));
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Everything `c` receives from now on, as `as` makes it. */
export function collectAs<T>(
  c: MqttClient,
  as: (topic: string, payload: Buffer, packet: IPublishPacket) => T,
): T[] {
  const received: T[] = [];
  c.on('message', (topic, payload, packet) => received.push(as(topic, payload, packet)));
  return received;
}

/** Everything `c` receives from now on. */
export function collect(c: MqttClient): Received[] {
  return collectAs(c, (topic, payload, packet) => ({ topic, payload, packet }));
}
