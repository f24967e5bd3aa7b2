// `nearmesh status`: the running agent's identity, listeners, peer counts and counters.
import type { Command } from 'commander';
import type { AgentStatus } from '../agent.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerStatusCommand(program: Command): void {
  addClientOptions(program.command('status').description('show the running agent’s state')).action(
    async (options: ClientOptions) => {
      const status = (await requestOnce(options, { cmd: 'status' })) as AgentStatus;
      if (options.json === true) return printJson(status);
      const lines = [
        `id        ${status.id}`,
        `name      ${status.name}`,
        `version   ${status.version} (protocol ${status.protocol})`,
        `uptime    ${status.uptime_s} s`,
        `wifi      ${status.wifi.listen ?? 'off'}${status.wifi.discovery.length > 0 ? ` (discovery: ${status.wifi.discovery.join(', ')})` : ''}`,
        `ble       ${status.ble}`,
        `peers     ${status.peers.connected} connected, ${status.peers.known} known`,
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
