// `nearmesh status`: the running agent's identity, listeners, peer counts and counters.
import type { Command } from 'commander';
import type { AgentStatus } from '../agent.js';
import type { Telemetry } from '../ops/telemetry.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerStatusCommand(program: Command): void {
  addClientOptions(program.command('status').description('show the running agent’s state')).action(
    async (options: ClientOptions) => {
      const status = (await requestOnce(options, { cmd: 'status' })) as AgentStatus & {
        board: { name: string; model: string | null };
        telemetry: Telemetry;
      };
      const { telemetry } = status;
      if (options.json === true) return printJson(status);
      const lines = [
        `id        ${status.id}`,
        `name      ${status.name}`,
        `version   ${status.version} (protocol ${status.protocol})`,
        `uptime    ${status.uptime_s} s`,
        `wifi      ${status.wifi.listen ?? 'off'}${status.wifi.discovery.length > 0 ? ` (discovery: ${status.wifi.discovery.join(', ')})` : ''}`,
        `ble       ${status.ble}`,
        `peers     ${status.peers.connected} connected, ${status.peers.routed} through the mesh, ${status.peers.known} known`,
        `mesh      ttl ${status.mesh.ttl}, ${status.mesh.relay ? 'relaying' : 'not relaying'}${status.mesh.groups.length > 0 ? `, groups ${status.mesh.groups.join(', ')}` : ''}`,
        `board     ${status.board.name}${status.board.model === null ? '' : ` (${status.board.model})`}`,
        `device    ${describeTelemetry(telemetry)}`,
        `data dir  ${status.data_dir}`,
        `socket    ${status.control_socket}`,
      ];
      const counters = Object.entries(status.counters);
      if (counters.length > 0)
        lines.push('counters', ...counters.map(([name, value]) => `  ${name} ${value}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );
}

/** One line: temperature, load, memory and disk, whatever the device reports. */
function describeTelemetry(telemetry: Telemetry): string {
  const parts: string[] = [];
  if (telemetry.cpu_temp !== null) parts.push(`${telemetry.cpu_temp.celsius.toFixed(1)} °C`);
  if (telemetry.load !== null) parts.push(`load ${telemetry.load.avg_1m.toFixed(2)}`);
  if (telemetry.memory?.available_bytes != null)
    parts.push(`${mib(telemetry.memory.available_bytes)} MiB free memory`);
  if (telemetry.disk !== null) parts.push(`${mib(telemetry.disk.available_bytes)} MiB free disk`);
  return parts.length === 0 ? '-' : parts.join(', ');
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
