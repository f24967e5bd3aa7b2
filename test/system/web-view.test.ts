// The web view and the metrics of a 3-agent network-namespace lab (a triangle n1-n2-n3), seen from n1's namespace
// as a person and a scraper there would: Debian's Chromium shows the three agents and their three links,
// cutting the n1-n2 veth changes the map within seconds (n2 then routed through n3), a call from the form runs
// n2's action; Debian's Prometheus scrapes all three agents (behind basic auth) and answers for each.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ring } from '../../scripts/lab/topology.js';
import { temporaryDir } from '../support/agent-process.js';
import { chromiumMissing, launchChromium, resultsDir } from '../support/chromium.js';
import { MeshLab } from '../support/mesh-lab.js';
import { whyNetnsUnavailable } from '../support/netns.js';
import { mosquittoPasswdHash } from '../support/password.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { writeShScript } from '../support/sh-script.js';
import { until } from '../support/until.js';

const HTTP_PORT = 7480;
const USER = 'viewer';
const PASSWORD = 'lab-s3cret';

function prometheusMissing(): string | undefined {
  return spawnSync('prometheus', ['--version']).error === undefined
    ? undefined
    : 'prometheus is not installed (apt-get install prometheus)';
}

/** Runs `fetch(url)` inside a namespace (where the lab's addresses are) and gives the body parsed as JSON. */
function fetchJsonIn<T>(netns: string, url: string): T | undefined {
  const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))`;
  const result = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
    encoding: 'utf8',
  });
  if (result.status !== 0) return undefined;
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    return undefined;
  }
}

describeWhenAvailable(
  'the web view and metrics of a 3-agent namespace lab',
  whyNetnsUnavailable() ?? chromiumMissing() ?? prometheusMissing(),
  () => {
    const mesh = new MeshLab(ring(3), 'wv');
    const children: ChildProcess[] = [];
    let browser: Browser;
    let page: Page;
    const shots = resultsDir('web-view-lab');

    beforeAll(async () => {
      const dir = temporaryDir('nearmesh-web-lab-');
      const passwords = join(dir, 'http.passwd');
      writeFileSync(passwords, `${USER}:${mosquittoPasswdHash(PASSWORD)}\n`);
      const hello = writeShScript(join(dir, 'hello'), 'cat >/dev/null; echo \'{"hello": "from the lab"}\'');
      await mesh.start((node) => ({
        http: [`listen = "0.0.0.0:${HTTP_PORT}"`, `password_file = ${JSON.stringify(passwords)}`],
        ...(node === 'n2' && {
          extraToml: ['[[actions]]', 'name = "hello"', `exec = [${JSON.stringify(hello)}]`].join('\n'),
        }),
      }));
      await mesh.waitLinked();
      browser = await launchChromium(mesh.lab.namespaceOf('n1'));
      const context = await browser.newContext({
        httpCredentials: { username: USER, password: PASSWORD },
        viewport: { width: 1280, height: 900 },
      });
      page = await context.newPage();
    }, 60_000);

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await browser?.close();
      await mesh.stop();
    }, 30_000);

    const linkRows = () => page.locator('#links tbody tr').allTextContents();

    it('Prometheus in the lab scrapes all three agents, each behind basic auth', async () => {
      const dir = temporaryDir('nearmesh-lab-prometheus-');
      mkdirSync(join(dir, 'data'));
      const targets = [
        `127.0.0.1:${HTTP_PORT}`,
        ...mesh.lab.neighbours('n1').map((n) => `${n.address}:${HTTP_PORT}`),
      ];
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global: { scrape_interval: 1s, scrape_timeout: 1s }',
          'scrape_configs:',
          '  - job_name: nearmesh',
          `    basic_auth: { username: ${USER}, password: ${PASSWORD} }`,
          `    static_configs: [{ targets: ${JSON.stringify(targets)} }]`,
          '',
        ].join('\n'),
      );
      const web = '127.0.0.1:9090';
      const netns = mesh.lab.namespaceOf('n1');
      children.push(
        spawn(
          'ip',
          [
            ...['netns', 'exec', netns, 'prometheus'],
            `--config.file=${join(dir, 'prometheus.yml')}`,
            `--storage.tsdb.path=${join(dir, 'data')}`,
            `--web.listen-address=${web}`,
          ],
          { stdio: 'ignore' },
        ),
      );
      type Answer = { data: { result: { metric: Record<string, string> }[] } };
      const answer = await until(
        'the three agents in a Prometheus query',
        () => {
          const got = fetchJsonIn<Answer>(netns, `http://${web}/api/v1/query?query=nearmesh_info`);
          return got !== undefined && got.data.result.length === 3 ? got : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(answer.data.result.map((series) => series.metric.name).sort()).toEqual(['n1', 'n2', 'n3']);
      type Targets = { data: { activeTargets: { health: string; lastError: string }[] } };
      const active = fetchJsonIn<Targets>(netns, `http://${web}/api/v1/targets`)?.data.activeTargets ?? [];
      expect(active).toHaveLength(3);
      for (const target of active) expect(target).toMatchObject({ health: 'up', lastError: '' });
    }, 60_000);

    it('the map shows the three agents and their three links', async () => {
      await page.goto(`http://127.0.0.1:${HTTP_PORT}/`);
      // What the page showed last, for the message if it never shows the triangle.
      let shown = '';
      await until(
        () => `three agents and three links on the page; it showed: ${shown}`,
        async () => {
          const agents = await page.locator('#agents tbody tr').allTextContents();
          const links = await linkRows();
          shown = JSON.stringify({ agents, links });
          return agents.length === 3 && links.length === 3;
        },
        { timeoutMs: 30_000 },
      );
      expect(await page.textContent('#live')).toBe('live');
      const rows = await linkRows();
      expect(rows.filter((row) => row.includes('wifi'))).toHaveLength(2); // n1's own, measured
      expect(rows.some((row) => row.includes('n2 – n3') || row.includes('n3 – n2'))).toBe(true);
      await page.screenshot({ path: join(shots, '1-triangle.png'), fullPage: true });
    }, 45_000);

    it('cutting the n1-n2 veth changes the map within seconds: n2 is then routed through n3', async () => {
      mesh.lab.cut('n1', 'n2');
      try {
        const started = Date.now();
        await until(
          'the n1-n2 link gone from the page and n2 routed',
          async () => {
            const rows = await linkRows();
            const n2 = await page.locator('#agents tbody tr', { hasText: 'n2' }).textContent();
            return !rows.some((row) => /n1 – n2|n2 – n1/.test(row)) && n2?.includes('routed') === true;
          },
          { timeoutMs: 20_000 },
        );
        const seconds = (Date.now() - started) / 1000;
        expect(seconds).toBeLessThan(20);
        await page.screenshot({ path: join(shots, '2-cut.png'), fullPage: true });
      } finally {
        mesh.lab.restore('n1', 'n2');
      }
    }, 40_000);

    it('a call from the form runs the action on n2', async () => {
      await page.locator('#agents tbody tr', { hasText: 'n2' }).click();
      const form = page.locator('form.call[data-action="hello"]');
      await form.locator('button').click();
      await form.locator('.result', { hasText: '"status": "ok"' }).waitFor({ timeout: 15_000 });
      expect(await form.locator('.result').textContent()).toContain('from the lab');
      await page.screenshot({ path: join(shots, '3-call.png'), fullPage: true });
    }, 30_000);
  },
);
