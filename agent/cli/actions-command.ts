// `nearmesh actions` and `nearmesh sensors`: what every agent of the mesh offers, from the announcements;
// `nearmesh leases`: who holds which of them.
import type { Command } from 'commander';
import { formatTable } from '../console/table.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerCapabilityCommands(program: Command): void {
  addClientOptions(
    program.command('actions').description('list the actions the agents of the mesh offer'),
  ).action(async (options: ClientOptions) => {
    const rows = await requestOnce(options, { cmd: 'actions' });
    if (options.json === true) return printJson(rows);
    process.stdout.write(
      formatTable(
        ['PEER', 'NAME', 'ACTION'],
        rows.map((row) => [row.peer, row.name, row.action]),
      ),
    );
  });
  addClientOptions(
    program
      .command('leases')
      .description("leases on this agent's actions, and those it holds on other agents'"),
  ).action(async (options: ClientOptions) => {
    const rows = await requestOnce(options, { cmd: 'leases' });
    if (options.json === true) return printJson(rows);
    process.stdout.write(
      rows.length === 0
        ? 'no leases\n'
        : formatTable(
            ['PEER', 'NAME', 'RESOURCE', 'HOLDER', 'LEFT'],
            rows.map((row) => [
              row.peer,
              row.name,
              row.resource,
              row.holder_name ?? row.holder,
              row.remaining_ms === null ? 'renewed' : `${Math.ceil(row.remaining_ms / 1000)} s`,
            ]),
          ),
    );
  });
  addClientOptions(
    program.command('sensors').description('list the sensors the agents of the mesh offer'),
  ).action(async (options: ClientOptions) => {
    const rows = await requestOnce(options, { cmd: 'sensors' });
    if (options.json === true) return printJson(rows);
    process.stdout.write(
      formatTable(
        ['PEER', 'NAME', 'SENSOR', 'VALUE', 'UNIT', 'READ AT'],
        rows.map((row) => [
          row.peer,
          row.name,
          row.sensor,
          row.value === null ? '' : String(row.value),
          row.unit ?? '',
          row.read_at ?? '',
        ]),
      ),
    );
  });
  addClientOptions(
    program
      .command('read')
      .description('read a sensor of a peer (or of this agent) now')
      .argument('<peer>', 'peer id or name')
      .argument('<sensor>', 'sensor name, e.g. cpu.temp'),
  ).action(async (peer: string, sensor: string, options: ClientOptions) => {
    const reading = await requestOnce(options, { cmd: 'read', peer, sensor });
    if (options.json === true) return printJson(reading);
    process.stdout.write(
      `${String(reading.value)}${reading.unit === null ? '' : ` ${reading.unit}`} (${reading.read_at})\n`,
    );
  });
}
