// `nearmesh agent`: runs the daemon in the foreground until SIGTERM or SIGINT.
import type { Command } from 'commander';

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      'run the agent in the foreground (config from --config, $NEARMESH_CONFIG, or embedded defaults)',
    )
    .option('-c, --config <file>', 'TOML config file')
    .action(async (options: { config?: string }) => {
      // Loaded here, not at the top: every other command (a push, a send) starts without the daemon's
      // modules (BLE, SQLite, the router...), which is a tenth of a second on each CLI call.
      const [{ Agent }, { loadConfig, configFilePath }, { createLogger }, { SystemdNotifier }] =
        await Promise.all([
          import('../agent.js'),
          import('../config/index.js'),
          import('../core/logger.js'),
          import('../ops/systemd-notify.js'),
        ]);
      const config = await loadConfig(options.config === undefined ? {} : { path: options.config });
      const log = createLogger({
        level:
          process.env.NEARMESH_LOG_LEVEL === undefined
            ? config.logLevel
            : parseLevel(process.env.NEARMESH_LOG_LEVEL),
      });
      const agent = new Agent(config, log);
      const systemd = new SystemdNotifier({ log });
      let stopping: Promise<void> | undefined;
      const stop = (signal: string): void => {
        if (stopping !== undefined) return;
        log.info({ signal }, 'stopping');
        systemd.stopping();
        stopping = agent.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            log.error({ err: error }, 'unclean stop');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      try {
        await agent.start();
      } catch (error) {
        await agent.stop().catch(() => {});
        throw error;
      }
      const { id, name } = agent.status();
      systemd.ready(`serving as ${name} (${id})`);
      // The first lines a new user reads: where the config is, and how to talk to this agent.
      const file = configFilePath(options.config === undefined ? {} : { path: options.config });
      const configArg = file === undefined ? '' : ` --config ${file}`;
      log.info(
        { config: file ?? null },
        `config: ${file ?? 'embedded defaults (no --config, NEARMESH_CONFIG not set)'}; ` +
          `see linked peers with "nearmesh peers${configArg}", check this device with "nearmesh doctor${configArg}"`,
      );
    });
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

function parseLevel(text: string): (typeof LEVELS)[number] {
  const level = LEVELS.find((candidate) => candidate === text);
  if (level === undefined) throw new Error(`NEARMESH_LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  return level;
}
