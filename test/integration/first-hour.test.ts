// Sharp edges a new user hits in the first hour, each as it was met: a second agent on the same data_dir
// (the same config started twice), a port another program holds, a crash's PID file left behind.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  CLI_PATH,
  freePorts,
  runCli,
  startAgent,
  stopAllAgents,
  temporaryDir,
  writeConfig,
} from '../support/agent-process.js';

afterAll(stopAllAgents);

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('the first hour', () => {
  let alpha: AgentProcess;

  it('refuses a second agent on the same data_dir, naming the first one’s PID; the first goes on', async () => {
    const [port] = await freePorts(1);
    alpha = await startAgent({ name: 'alpha', meshKey: undefined, port: port as number });
    const result = await runCli(['agent', '--config', alpha.configPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `another agent (PID ${alpha.child.pid}) is already running with data_dir ${alpha.dir}`,
    );
    expect(result.stderr).not.toContain('EADDRINUSE');
    expect((await alpha.cli(['id'])).code).toBe(0);
  });

  it('ends `watch ... | head` quietly: no EPIPE stack trace, exit 0', async () => {
    const watch = `${process.execPath} ${CLI_PATH} watch alpha cpu.load --every 100ms --socket ${alpha.socketPath}`;
    const piped = spawnSync('sh', ['-c', `${watch} | head -n 2`], { encoding: 'utf8', timeout: 15_000 });
    expect(piped.status).toBe(0);
    expect(piped.stdout.trim().split('\n')).toHaveLength(2);
    expect(piped.stderr).toBe('');
  });

  it('names the config key and the program holding a taken port', async () => {
    const [wifiPort, mqttPort, agentPort] = await freePorts(3);
    const held = await Promise.all([listenOn(wifiPort as number), listenOn(mqttPort as number)]);
    try {
      const dir = temporaryDir();
      const config = writeConfig({ name: 'b', meshKey: undefined, port: wifiPort as number }, dir);
      const wifi = await runCli(['agent', '--config', config]);
      expect(wifi.code).toBe(2);
      expect(wifi.stderr).toContain(
        `[wifi] listen = "127.0.0.1:${wifiPort}": the port is already in use by node (PID ${process.pid})`,
      );
      const mqttDir = temporaryDir();
      const mqttConfig = writeConfig(
        {
          name: 'c',
          meshKey: undefined,
          port: agentPort as number,
          mqtt: [`listen = "127.0.0.1:${mqttPort}"`],
        },
        mqttDir,
      );
      const mqtt = await runCli(['agent', '--config', mqttConfig]);
      expect(mqtt.code).toBe(2);
      expect(mqtt.stderr).toContain(
        `[mqtt] listen = "127.0.0.1:${mqttPort}": the port is already in use by node`,
      );
    } finally {
      for (const server of held) server.close();
    }
  });

  it('takes over the PID file a crash left behind', async () => {
    const [port] = await freePorts(1);
    const dir = temporaryDir();
    // A PID no process has (beyond the kernel's pid_max).
    writeFileSync(join(dir, 'agent.pid'), '4194305\n');
    const agent = await startAgent({ name: 'phoenix', meshKey: undefined, port: port as number, dir });
    expect((await agent.cli(['id'])).code).toBe(0);
    await agent.stop();
  });
});
