// `nearmesh doctor`: runs the device checks (doctor-checks.ts) and prints one line per check, or `--json`
// for programs. Exit status 1 when a check failed.
import type { Command } from 'commander';
import { printJson } from './client-options.js';
import { formatReport, runDoctor } from './doctor-checks.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check this device for running nearmesh (no agent needed); exit status 1 if a check fails')
    .option('--json', 'print the checks as one JSON document')
    .option('-c, --config <file>', 'config file to check against (default: $NEARMESH_CONFIG, else defaults)')
    .action(async (options: { json?: boolean; config?: string }) => {
      const report = await runDoctor(options.config === undefined ? {} : { configPath: options.config });
      if (options.json === true) printJson(report);
      else process.stdout.write(formatReport(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
