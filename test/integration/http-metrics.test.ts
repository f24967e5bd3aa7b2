// /metrics of a running agent: what a scraper gets, who may read it, and a real Prometheus (Debian's)
// scraping it and answering a query with the agent's series.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../agent/api.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { mosquittoPasswdHash } from '../support/password.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('http-metrics-test-mesh-key-32-b!').toString('base64url');

let open: AgentProcess;
let guarded: AgentProcess;
let openUrl: string;
let guardedUrl: string;
const children: ChildProcess[] = [];

async function metricsUrl(agent: AgentProcess): Promise<string> {
  const status = await agent.json<AgentStatus>(['status']);
  if (status.http.state !== 'on') throw new Error(`HTTP not served: ${JSON.stringify(status.http)}`);
  return `http://${status.http.listen}/metrics`;
}

beforeAll(async () => {
  const [openPort, guardedPort] = await freePorts(2);
  open = await startAgent({
    name: 'metrics-open',
    meshKey: MESH_KEY,
    port: openPort as number,
    http: ['listen = "127.0.0.1:0"'],
  });
  const dir = temporaryDir('nearmesh-metrics-');
  writeFileSync(join(dir, 'metrics.passwd'), `scraper:${mosquittoPasswdHash('s3cret')}\n`);
  guarded = await startAgent({
    name: 'metrics-guarded',
    meshKey: MESH_KEY,
    port: guardedPort as number,
    peers: [`127.0.0.1:${openPort}`],
    http: ['listen = "127.0.0.1:0"', `password_file = ${JSON.stringify(join(dir, 'metrics.passwd'))}`],
  });
  [openUrl, guardedUrl] = [await metricsUrl(open), await metricsUrl(guarded)];
}, 40_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await stopAllAgents();
});

describe('GET /metrics', () => {
  it('gives the text exposition format with the agent, its gauges and its counters', async () => {
    const response = await fetch(openUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text).toMatch(/^nearmesh_info\{id="[0-9a-f]+",name="metrics-open",.*\} 1$/m);
    expect(text).toMatch(/^nearmesh_uptime_seconds \d+/m);
    expect(text).toMatch(/^nearmesh_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nearmesh_http_requests_total \d+/m);
  });

  it('gives each linked peer its hops and RTT, labelled with its id, name and medium', async () => {
    const { id } = await guarded.json<{ id: string }>(['id']);
    const line = new RegExp(
      `^nearmesh_peer_hops\\{peer="${id}",name="metrics-guarded",medium="wifi"\\} 1$`,
      'm',
    );
    await until('the linked peer in /metrics', async () => line.test(await (await fetch(openUrl)).text()));
  });

  it('answers other paths 404 and other methods 405', async () => {
    expect((await fetch(openUrl.replace('/metrics', '/nope'))).status).toBe(404);
    expect((await fetch(openUrl, { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('asks for the password_file’s users with HTTP Basic, and counts refusals', async () => {
    const refused = await fetch(guardedUrl);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm="nearmesh"/);
    const wrong = await fetch(guardedUrl, { headers: { authorization: basic('scraper', 'nope') } });
    expect(wrong.status).toBe(401);
    const right = await fetch(guardedUrl, { headers: { authorization: basic('scraper', 's3cret') } });
    expect(right.status).toBe(200);
    expect(await right.text()).toMatch(/^nearmesh_http_auth_failed_total 2$/m);
  });
});

describe('the listener', () => {
  it('on the default port, taken, costs a warning and the agent runs on; a configured taken port stops it', async () => {
    // 7480 held by this test if it is free (else by something else: just as good).
    const holder = createServer();
    await new Promise<void>((resolve) => {
      holder.once('error', () => resolve());
      holder.listen(7480, '127.0.0.1', () => resolve());
    });
    try {
      const [port, other] = await freePorts(2);
      const agent = await startAgent({
        name: 'metrics-default',
        meshKey: undefined,
        port: port as number,
        http: [],
      });
      expect((await agent.json<AgentStatus>(['status'])).http).toMatchObject({ state: 'unavailable' });
      expect(agent.output).toContain('HTTP: not serving');
      await agent.stop();
      const failing = startAgent({
        name: 'metrics-taken',
        meshKey: undefined,
        port: other as number,
        http: ['listen = "127.0.0.1:7480"'],
      });
      await expect(failing).rejects.toThrow(
        /\[http\] listen = "127\.0\.0\.1:7480": the port is already in use/,
      );
    } finally {
      holder.close();
    }
  });
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function prometheusMissing(): string | undefined {
  const probe = spawnSync('prometheus', ['--version']);
  return probe.error === undefined ? undefined : 'prometheus is not installed (apt-get install prometheus)';
}

interface QueryAnswer {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

interface TargetsAnswer {
  data: { activeTargets: { health: string; lastError: string; labels: Record<string, string> }[] };
}

describeWhenAvailable('a real Prometheus', prometheusMissing(), () => {
  it('scrapes both agents (one with basic auth) and answers a query with their series', async () => {
    const [webPort] = await freePorts(1);
    const dir = temporaryDir('nearmesh-prometheus-');
    mkdirSync(join(dir, 'data'));
    const target = (url: string) => new URL(url).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s }',
        'scrape_configs:',
        '  - job_name: nearmesh-open',
        `    static_configs: [{ targets: ["${target(openUrl)}"] }]`,
        '  - job_name: nearmesh-guarded',
        '    basic_auth: { username: scraper, password: s3cret }',
        `    static_configs: [{ targets: ["${target(guardedUrl)}"] }]`,
        '',
      ].join('\n'),
    );
    const web = `127.0.0.1:${webPort}`;
    const prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=${web}`,
      ],
      { stdio: 'ignore' },
    );
    children.push(prometheus);
    const query = async (): Promise<QueryAnswer | undefined> => {
      try {
        const response = await fetch(`http://${web}/api/v1/query?query=nearmesh_info`);
        return response.ok ? ((await response.json()) as QueryAnswer) : undefined;
      } catch {
        return undefined; // not listening yet
      }
    };
    const answer = await until(
      'both agents in a Prometheus query',
      async () => {
        const got = await query();
        return got !== undefined && got.data.result.length === 2 ? got : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(answer.data.result.map((series) => series.metric.name).sort()).toEqual([
      'metrics-guarded',
      'metrics-open',
    ]);
    const targets = (await (await fetch(`http://${web}/api/v1/targets`)).json()) as TargetsAnswer;
    for (const active of targets.data.activeTargets)
      expect(active).toMatchObject({ health: 'up', lastError: '' });
  }, 60_000);
});
