// Home Assistant discovery, kept current: this agent (the gateway) publishes, retained, one discovery config
// per agent of the mesh it knows (homeassistant-discovery.ts), whether it reaches each agent, and its own
// online state; it runs the button presses and switch commands Home Assistant publishes back. An agent that
// goes quiet stays in Home Assistant as unavailable (a Pi switched off for the night must keep its history);
// one that is revoked is removed (an empty retained config deletes the device).
import type { CallOutcome, CallRequest } from '../coordination/caller.js';
import type { SensorReadResult } from '../coordination/coordinator.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import { decodePayload, isJsonObject } from './app-payload.js';
import {
  HA_OFFLINE,
  HA_ONLINE,
  type HaAgent,
  type HaGateway,
  haDeviceConfig,
} from './homeassistant-discovery.js';
import {
  haAvailabilityTopic,
  haBirthTopic,
  haDeviceConfigTopic,
  haGatewayStatusTopic,
  parseHaCommandTopic,
  sensorTopic,
} from './topic-map.js';

/** Agents with a device in Home Assistant at once; past it a new agent gets none (counted). */
export const MAX_HA_DEVICES = 1000;
/** How long a button press or a switch command may take on its agent. */
const COMMAND_TIMEOUT_MS = 10_000;

type Platform = 'sensor' | 'button' | 'switch';

export interface HomeAssistantGatewayOptions {
  discoveryPrefix: string;
  gateway: HaGateway;
  /** The agents the gateway knows now, itself first. */
  agents(): HaAgent[];
  /** True while the gateway has a path to that agent. */
  reaches(peer: string): boolean;
  /** Peer ids revoked in the mesh: their devices are removed. */
  revoked(): Iterable<string>;
  call(request: CallRequest): Promise<CallOutcome[]>;
  read(peer: string, sensor: string): Promise<SensorReadResult>;
  /** Publishes locally and, when the bridge's filters take it, to Home Assistant's broker. */
  publish(topic: string, payload: string, retain: boolean): void;
  counters: Counters;
  log: Logger;
}

interface Published {
  config: string;
  components: Map<string, Platform>;
  /** The availability last published; undefined: not yet. */
  online: boolean | undefined;
}

export class HomeAssistantGateway {
  readonly #options: HomeAssistantGatewayOptions;
  readonly #devices = new Map<string, Published>();
  /** Revoked agents whose devices were removed in this run. */
  readonly #removed = new Set<string>();
  /** Sensor topics of every sensor with a device: kept watched, as if Home Assistant subscribed here. */
  #sensorTopics = new Set<string>();

  constructor(options: HomeAssistantGatewayOptions) {
    this.#options = options;
  }

  start(): void {
    this.#publishStatus(HA_ONLINE);
    this.refresh();
  }

  /** Publishes "offline" for the gateway (before the bridge drains and closes). */
  stop(): void {
    this.#publishStatus(HA_OFFLINE);
  }

  /** The bridge (re)connected: say "online" again, over the will a lost connection may have left. */
  reconnected(): void {
    this.#publishStatus(HA_ONLINE);
  }

  /**
   * A publish that may be Home Assistant's: its birth message, or a button press or switch command for this
   * gateway. True when it was one of those.
   */
  handle(topic: string, payload: Buffer): boolean {
    if (topic !== haBirthTopic(this.#options.discoveryPrefix)) return this.command(topic, payload);
    this.birth(payload);
    return true;
  }

  /** Home Assistant (re)started and asks for discovery: everything is published again. */
  birth(payload: Buffer): void {
    if (payload.toString('utf8') !== HA_ONLINE) return;
    this.#options.counters.increment('homeassistant.births');
    this.#publishStatus(HA_ONLINE);
    for (const device of this.#devices.values()) {
      device.config = '';
      device.online = undefined;
    }
    this.refresh();
  }

  /** True when a sensor's topic belongs to a device: the gateway keeps that sensor watched. */
  wantsSensor(topic: string): boolean {
    return this.#sensorTopics.has(topic);
  }

  sensorTopics(): Iterable<string> {
    return this.#sensorTopics;
  }

  /** Compares what the mesh offers now with what was published, and publishes the difference. */
  refresh(): void {
    const { agents, reaches, gateway, counters } = this.#options;
    const sensorTopics = new Set<string>();
    for (const agent of agents()) {
      if (this.#removed.has(agent.id)) continue;
      let device = this.#devices.get(agent.id);
      if (device === undefined) {
        if (this.#devices.size >= MAX_HA_DEVICES) {
          counters.increment('homeassistant.devices_refused');
          continue;
        }
        device = { config: '', components: new Map(), online: undefined };
        this.#devices.set(agent.id, device);
      }
      const { config, components } = haDeviceConfig(agent, gateway, device.components);
      const json = JSON.stringify(config);
      if (json !== device.config) {
        this.#publish(haDeviceConfigTopic(this.#options.discoveryPrefix, agent.id), json, true);
        counters.increment('homeassistant.configs_published');
        device.config = json;
      }
      device.components = components;
      for (const sensor of agent.sensors) sensorTopics.add(sensorTopic(agent.id, sensor.name));
    }
    this.#sensorTopics = sensorTopics;
    for (const [peer, device] of this.#devices) {
      const online = peer === gateway.id || reaches(peer);
      if (online === device.online) continue;
      device.online = online;
      this.#publish(haAvailabilityTopic(gateway.id, peer), online ? HA_ONLINE : HA_OFFLINE, true);
    }
    this.#removeRevoked();
  }

  /** A publish on one of this gateway's command topics: a button press or a switch command. */
  command(topic: string, payload: Buffer): boolean {
    const command = parseHaCommandTopic(this.#options.gateway.id, topic);
    if (command === undefined) return false;
    const { counters, log } = this.#options;
    counters.increment('homeassistant.commands');
    const decoded = payload.length === 0 ? { ok: true as const, value: {} } : decodePayload(payload, 'json');
    if (!decoded.ok || !isJsonObject(decoded.value)) {
      counters.increment('homeassistant.commands_failed');
      log.warn({ topic }, 'homeassistant: a command whose payload is not a JSON object was ignored');
      return true;
    }
    const request = {
      target: command.peer,
      action: command.action,
      args: decoded.value,
      timeoutMs: COMMAND_TIMEOUT_MS,
    };
    void this.#run(request, command.peer);
    return true;
  }

  async #run(request: CallRequest, peer: string): Promise<void> {
    const { counters, log } = this.#options;
    try {
      const [outcome] = await this.#options.call(request);
      if (outcome?.status !== 'ok')
        throw new Error(outcome?.error?.message ?? `${outcome?.status ?? 'no agent'}`);
    } catch (error) {
      counters.increment('homeassistant.commands_failed');
      log.warn({ err: error, peer, action: request.action }, 'homeassistant: a command failed');
      return;
    }
    // A switch's state is the sensor of the same name: read it now so Home Assistant sees the change.
    if (this.#sensorTopics.has(sensorTopic(peer, request.action)))
      await this.#options.read(peer, request.action).catch(() => {
        counters.increment('homeassistant.state_reads_failed');
      });
  }

  #removeRevoked(): void {
    const { discoveryPrefix, gateway } = this.#options;
    for (const peer of this.#options.revoked()) {
      if (this.#removed.has(peer)) continue;
      this.#removed.add(peer);
      this.#devices.delete(peer);
      // Empty retained messages: the broker forgets them, and Home Assistant deletes the device.
      this.#publish(haDeviceConfigTopic(discoveryPrefix, peer), '', true);
      this.#publish(haAvailabilityTopic(gateway.id, peer), '', true);
      this.#options.counters.increment('homeassistant.devices_removed');
    }
  }

  #publishStatus(status: string): void {
    this.#publish(haGatewayStatusTopic(this.#options.gateway.id), status, true);
  }

  #publish(topic: string, payload: string, retain: boolean): void {
    this.#options.publish(topic, payload, retain);
  }
}
