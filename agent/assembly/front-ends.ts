// The front ends: the control socket (the CLI's way in) and, when configured, the serial console. Both
// speak the agent's one API; the console's command language runs on top of it.
import type { AgentApi } from '../api.js';
import type { Config } from '../config/index.js';
import type { ConsoleContext } from '../console/commands.js';
import { ControlServer } from '../control/server.js';
import type { Counters } from '../core/counters.js';
import type { Lifecycle } from '../core/lifecycle.js';
import type { Logger } from '../core/logger.js';

export interface FrontEndOptions {
  api: AgentApi;
  config: Config;
  lifecycle: Lifecycle;
  log: Logger;
  counters: Counters;
}

export async function startFrontEnds({
  api,
  config,
  lifecycle,
  log,
  counters,
}: FrontEndOptions): Promise<void> {
  const consoleContext: ConsoleContext = api;
  // The console's command table loads on first use: most agents never see a console client.
  const control = new ControlServer(
    config.control.socketPath,
    {
      api,
      consoleLine: async (line, io) => {
        const { runConsoleLine } = await import('../console/commands.js');
        return { output: await runConsoleLine(line, consoleContext, io) };
      },
      consoleComplete: async (line) => {
        const { completeConsoleLine } = await import('../console/commands.js');
        const [completions, word] = completeConsoleLine(line, consoleContext);
        return { completions, word };
      },
    },
    log,
  );
  await lifecycle.start('control socket', control);
  if (config.console.serial !== false) {
    // Loaded only when configured; a missing device is retried in the background, never fatal.
    const { SerialConsole } = await import('../console/serial-console.js');
    await lifecycle.start(
      'serial console',
      new SerialConsole({
        path: config.console.serial,
        baud: config.console.baud,
        context: consoleContext,
        password: config.console.password,
        allowUnauthenticated: config.console.allowUnauthenticated,
        counters,
        log,
      }),
    );
  }
}
