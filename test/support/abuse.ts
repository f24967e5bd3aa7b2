// What every attack on an agent's MQTT endpoint checks: while the attack runs the agent's RSS (sampled every
// 20 ms) stays within idle + 64 MB, its event loop is never held more than 100 ms (the agent's own reading,
// over the last 10-20 s), and afterwards it still serves MQTT and answers `status` at once.
import { expect } from 'vitest';
import type { AgentStatus } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { type AgentProcess, freePorts, startAgent } from './agent-process.js';
import { mqttPort } from './mqtt-clients.js';
import { rssMb } from './proc-status.js';

export const RSS_BUDGET_MB = 64;
export const LOOP_DELAY_BUDGET_MS = 100;

/** An agent serving MQTT on a free loopback port, with extra `[mqtt]` lines; its MQTT port and pid. */
export async function startMqttAgent(
  name: string,
  mqttLines: string[] = [],
): Promise<{ agent: AgentProcess; mqtt: number; pid: number }> {
  const [port] = (await freePorts(1)) as [number];
  const agent = await startAgent({
    name,
    meshKey: generateMeshKey(),
    port,
    mqtt: ['listen = "127.0.0.1:0"', ...mqttLines],
  });
  return { agent, mqtt: await mqttPort(agent), pid: agent.child.pid as number };
}

/** The agent's counters, from `status`. */
export async function countersOf(agent: AgentProcess): Promise<Record<string, number>> {
  return (await agent.json<AgentStatus>(['status'])).counters;
}

/**
 * The agent answers `status` within 2 s and its event loop was never held over LOOP_DELAY_BUDGET_MS in the
 * last 10-20 s (its own reading); the status, for more checks.
 */
export async function expectResponsive(agent: AgentProcess): Promise<AgentStatus> {
  const startedAt = Date.now();
  const status = await agent.json<AgentStatus>(['status']);
  const answeredMs = Date.now() - startedAt;
  console.log(
    `[abuse] ${agent.spec.name}: status in ${answeredMs} ms, event loop held at most ` +
      `${status.event_loop.delay_max_ms} ms (p99 ${status.event_loop.delay_p99_ms} ms) over the last 10-20 s`,
  );
  expect(answeredMs).toBeLessThan(2000);
  expect(status.event_loop.delay_max_ms).toBeLessThanOrEqual(LOOP_DELAY_BUDGET_MS);
  return status;
}

/** Runs `attack` while sampling RSS, then checks the bounds above. */
export async function withinBounds(
  agent: AgentProcess,
  pid: number,
  idleMb: number,
  attack: () => Promise<void>,
): Promise<void> {
  let max = rssMb(pid);
  const timer = setInterval(() => {
    max = Math.max(max, rssMb(pid));
  }, 20);
  try {
    await attack();
    expect((await expectResponsive(agent)).mqtt.state).toBe('on');
    expect(max).toBeLessThanOrEqual(idleMb + RSS_BUDGET_MB);
  } finally {
    clearInterval(timer);
  }
}
