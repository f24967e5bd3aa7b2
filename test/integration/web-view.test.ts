// The web view of a running agent, linked to a second one on loopback: the page and its files (offline: all
// from the agent), the snapshot and its live stream (a link that goes is gone from the next snapshot), the
// call and read endpoints with their refusals, the bound on open pages, and the page itself in Debian's
// Chromium on a phone-sized screen.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, CallResultRow, SensorReadResult } from '../../agent/api.js';
import type { MeshView } from '../../agent/http/web/view-types.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { chromiumMissing, launchChromium, resultsDir } from '../support/chromium.js';
import { itWhenAvailable } from '../support/requirements.js';
import { writeShScript } from '../support/sh-script.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('web-view-test-mesh-key-32-bytes!').toString('base64url');

let a: AgentProcess;
let b: AgentProcess;
let base: string;
let aId: string;
let bId: string;

/** Reads server-sent events from `/api/events` as they come. */
class ViewStream {
  readonly views: MeshView[] = [];
  readonly #controller = new AbortController();
  readonly opened: Promise<Response>;

  constructor(url: string) {
    this.opened = fetch(url, { signal: this.#controller.signal });
    void this.opened.then(async (response) => {
      if (!response.ok || response.body === null) return;
      const decoder = new TextDecoder();
      let buffered = '';
      try {
        for await (const chunk of response.body) {
          buffered += decoder.decode(chunk as Uint8Array, { stream: true });
          let end = buffered.indexOf('\n\n');
          while (end >= 0) {
            const event = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const data = /^event: view\ndata: (.*)$/s.exec(event)?.[1];
            if (data !== undefined) this.views.push(JSON.parse(data) as MeshView);
            end = buffered.indexOf('\n\n');
          }
        }
      } catch {
        // aborted by close()
      }
    });
  }

  close(): void {
    this.#controller.abort();
  }
}

beforeAll(async () => {
  const [portA, portB] = (await freePorts(2)) as [number, number];
  const scripts = temporaryDir('nearmesh-web-view-');
  const hello = writeShScript(join(scripts, 'hello'), 'cat >/dev/null; echo \'{"hello": "from b"}\'');
  const temp = writeShScript(join(scripts, 'temp'), 'echo 21.5');
  a = await startAgent({ name: 'view-a', meshKey: MESH_KEY, port: portA, http: ['listen = "127.0.0.1:0"'] });
  b = await startAgent({
    name: 'view-b',
    meshKey: MESH_KEY,
    port: portB,
    peers: [`127.0.0.1:${portA}`],
    extraToml: [
      ...['[[actions]]', 'name = "hello"', `exec = [${JSON.stringify(hello)}]`],
      ...['[[sensors]]', 'name = "temp"', `exec = [${JSON.stringify(temp)}]`, 'unit = "Cel"'],
    ].join('\n'),
  });
  const status = await a.json<AgentStatus>(['status']);
  if (status.http.state !== 'on') throw new Error(`HTTP not served: ${JSON.stringify(status.http)}`);
  base = `http://${status.http.listen}`;
  aId = status.id;
  bId = (await b.json<{ id: string }>(['id'])).id;
  await until('b announced, with its action', async () => {
    const view = (await (await fetch(`${base}/api/state`)).json()) as MeshView;
    return view.links.length === 1 && (view.actions[bId] ?? []).includes('hello');
  });
}, 40_000);

afterAll(stopAllAgents);

describe('the page and its files', () => {
  it('serves the page with a strict Content-Security-Policy that allows exactly its import map', async () => {
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    const importMap = /<script type="importmap">([^<]*)<\/script>/.exec(html)?.[1] ?? '';
    expect(JSON.parse(importMap)).toEqual({ imports: { cytoscape: '/assets/cytoscape.esm.min.mjs' } });
    const policy = response.headers.get('content-security-policy') ?? '';
    const hash = createHash('sha256').update(importMap).digest('base64');
    expect(policy).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(policy).toContain("frame-ancestors 'none'");
  });

  it('serves the script, the style and the graph library from the agent itself, gzipped when asked', async () => {
    for (const path of ['/assets/app.js', '/assets/style.css', '/assets/cytoscape.esm.min.mjs']) {
      const plain = await fetch(`${base}${path}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.status).toBe(200);
      const body = Buffer.from(await plain.arrayBuffer());
      expect(body.length).toBeGreaterThan(500);
      // node's fetch unzips by itself; ask by hand to see the bytes on the wire.
      const { request } = await import('node:http');
      const gzipped = await new Promise<Buffer>((resolve, reject) => {
        request(`${base}${path}`, { headers: { 'accept-encoding': 'gzip' } }, (response) => {
          expect(response.headers['content-encoding']).toBe('gzip');
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve(Buffer.concat(chunks)));
        })
          .on('error', reject)
          .end();
      });
      expect(gunzipSync(gzipped).equals(body)).toBe(true);
      const etag = plain.headers.get('etag') ?? '';
      expect((await fetch(`${base}${path}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    }
  });
});

describe('the snapshot', () => {
  it('has both agents with what they run, their link as this agent measures it, actions and sensors', async () => {
    const view = (await (await fetch(`${base}/api/state`)).json()) as MeshView;
    expect(view.self).toMatchObject({ id: aId, name: 'view-a', troubles: [] });
    expect(view.agents.map((agent) => [agent.name, agent.state])).toEqual([
      ['view-a', 'self'],
      ['view-b', 'connected'],
    ]);
    expect(typeof view.agents[1]?.board).toBe('string');
    expect(view.links).toEqual([
      { from: aId, to: bId, medium: 'wifi', rtt_ms: expect.any(Number), rssi_dbm: null },
    ]);
    expect(view.sensors).toContainEqual(expect.objectContaining({ peer: bId, sensor: 'temp', unit: 'Cel' }));
  });

  it('calls an action and reads a sensor for the page', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const called = await post('/api/call', { target: 'view-b', action: 'hello', args: {} });
    expect(called.status).toBe(200);
    expect((await called.json()) as CallResultRow[]).toEqual([
      expect.objectContaining({ peer: bId, status: 'ok', result: { hello: 'from b' } }),
    ]);
    const read = await post('/api/read', { peer: bId, sensor: 'temp' });
    expect((await read.json()) as SensorReadResult).toMatchObject({ peer: bId, sensor: 'temp', value: 21.5 });
    const unknown = await post('/api/call', { target: 'nobody-here', action: 'hello', args: {} });
    expect(unknown.status).toBe(422);
    expect(await unknown.json()).toMatchObject({ code: 'unknown-peer' });
  });

  it('refuses a call from another site, without JSON, too large or malformed, and counts it', async () => {
    const attempt = (init: RequestInit) => fetch(`${base}/api/call`, { method: 'POST', ...init });
    const json = { 'content-type': 'application/json' };
    const body = JSON.stringify({ target: 'view-b', action: 'hello', args: {} });
    expect((await attempt({ headers: { ...json, origin: 'http://evil.example' }, body })).status).toBe(403);
    expect((await attempt({ headers: { 'content-type': 'text/plain' }, body })).status).toBe(415);
    expect((await attempt({ headers: json, body: 'x'.repeat(20_000) })).status).toBe(413);
    expect((await attempt({ headers: json, body: '{"target": 1}' })).status).toBe(400);
    expect((await fetch(`${base}/api/call`)).status).toBe(405);
    const status = await a.json<AgentStatus>(['status']);
    expect(status.counters['http.posts_refused']).toBe(5);
  });
});

describe('the live stream', () => {
  it('takes at most 8 pages at once', async () => {
    const streams = Array.from({ length: 8 }, () => new ViewStream(`${base}/api/events`));
    try {
      for (const stream of streams) expect((await stream.opened).status).toBe(200);
      const ninth = await fetch(`${base}/api/events`);
      expect(ninth.status).toBe(503);
      await until('a view on each stream', () => streams.every((stream) => stream.views.length > 0));
    } finally {
      for (const stream of streams) stream.close();
    }
    expect((await a.json<AgentStatus>(['status'])).counters['http.view_streams_refused']).toBe(1);
  });

  itWhenAvailable(
    'the page on a phone: the map, the tables, a call from the form',
    chromiumMissing(),
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(String(error)));
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(message.text());
        });
        await page.goto(`${base}/`);
        await page.waitForSelector('#agents tbody tr:nth-child(2)');
        expect(await page.textContent('#live')).toBe('live');
        expect(await page.locator('#links tbody tr').count()).toBe(1);
        // The map has both agents (cytoscape draws on a canvas: asked through the page's own data).
        await page.locator('#agents tbody tr', { hasText: 'view-b' }).waitFor();
        await page.screenshot({ path: join(resultsDir('web-view'), 'phone.png'), fullPage: true });
        // The detail panel starts on this agent; b's action is called from b's panel.
        await page.locator('#agents tbody tr', { hasText: 'view-b' }).click();
        await page.locator('#detail h2', { hasText: 'view-b' }).waitFor();
        const form = page.locator('form.call[data-action="hello"]');
        await form.locator('button').click();
        await form.locator('.result', { hasText: '"status": "ok"' }).waitFor();
        expect(await form.locator('.result').textContent()).toContain('from b');
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );

  it('sends a new snapshot when a link goes: the other agent is then neither linked nor drawn as linked', async () => {
    const stream = new ViewStream(`${base}/api/events`);
    try {
      await until('the first view', () => stream.views.length > 0);
      expect(stream.views[0]?.links).toHaveLength(1);
      await b.stop();
      const after = await until('a view without the link', () =>
        stream.views.find((view) => view.links.length === 0),
      );
      expect(after.agents.find((agent) => agent.id === bId)?.state).toBe('disconnected');
    } finally {
      stream.close();
    }
  }, 30_000);
});
