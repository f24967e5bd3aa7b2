// The web view's HTTP side: the page and its files, the mesh snapshot (`/api/state`), the live stream of
// snapshots (`/api/events`, server-sent events: a new one only when something changed, at most once a second,
// and only while a page is open), `/api/call` for the page's action form and `/api/read` to read a sensor
// now. Everything is read through the typed agent API, as the CLI reads it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod/v3';
import type { AgentApi, StatusReport } from '../api.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { JsonObject } from '../protocol/json-cbor.js';
import { meshView } from './mesh-view.js';
import { pageSecurityPolicy, WebAssets } from './web-assets.js';

export type WebViewApi = Pick<
  AgentApi,
  'status' | 'peers' | 'topology' | 'actions' | 'sensors' | 'leases' | 'transfers' | 'call' | 'read'
>;

/** Pages open at once; another one's stream is refused (503) and counted. */
export const MAX_VIEW_STREAMS = 8;
/** How often an open page's snapshot is rebuilt and, when it changed, sent. */
const STREAM_CHECK_MS = 1000;
/** Status (with its telemetry: file reads, vcgencmd on a Pi) is read at most this often. */
const STATUS_MAX_AGE_MS = 5000;
/** A comment line now and then keeps proxies and phones from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;
/** Bytes a stream may have waiting in its socket; past it, snapshots are skipped until it drains (the next is whole). */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;
/** The body of a POST from the page (a call's arguments). */
const MAX_POST_BODY_BYTES = 16 * 1024;
const CALL_TIMEOUT_MS = 10_000;

const callBody = z
  .object({
    target: z.string().min(1).max(128),
    action: z.string().min(1).max(63),
    args: z.record(z.unknown()).default({}),
  })
  .strict()
  .describe('{"target": "<peer>", "action": "<name>", "args": {...}}');

const readBody = z
  .object({ peer: z.string().min(1).max(128), sensor: z.string().min(1).max(63) })
  .strict()
  .describe('{"peer": "<peer>", "sensor": "<name>"}');

export interface WebViewOptions {
  api: WebViewApi;
  counters: Counters;
  log: Logger;
}

interface Stream {
  response: ServerResponse;
  sent: string;
}

export class WebView {
  readonly #options: WebViewOptions;
  readonly #assets = new WebAssets();
  readonly #streams = new Set<Stream>();
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #status: { report: StatusReport; atMs: number } | undefined;

  constructor(options: WebViewOptions) {
    this.#options = options;
  }

  /** Serves `path` if it is the web view's; false for any other path. */
  async handle(path: string, request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    if (this.#assets.has(path)) {
      if (!onlyGet(request, response)) return true;
      await this.#asset(path, request, response);
      return true;
    }
    switch (path) {
      case '/api/state':
        if (onlyGet(request, response)) sendJson(response, 200, await this.#snapshot());
        return true;
      case '/api/events':
        if (onlyGet(request, response)) this.#openStream(request, response);
        return true;
      case '/api/call':
        await this.#call(request, response);
        return true;
      case '/api/read':
        await this.#read(request, response);
        return true;
      default:
        return false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    clearInterval(this.#heartbeat);
    this.#timer = undefined;
    this.#heartbeat = undefined;
    for (const stream of this.#streams) stream.response.end();
    this.#streams.clear();
  }

  async #asset(path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const asset = await this.#assets.get(path);
    const headers: Record<string, string> = {
      'Content-Type': asset.contentType,
      ETag: asset.etag,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Accept-Encoding',
    };
    if (path === '/') headers['Content-Security-Policy'] = pageSecurityPolicy(asset.body);
    if (request.headers['if-none-match'] === asset.etag) {
      response.writeHead(304, headers);
      response.end();
      return;
    }
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzip) headers['Content-Encoding'] = 'gzip';
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : gzip ? asset.gzipped : asset.body);
  }

  #openStream(request: IncomingMessage, response: ServerResponse): void {
    const { counters } = this.#options;
    if (this.#streams.size >= MAX_VIEW_STREAMS) {
      counters.increment('http.view_streams_refused');
      sendJson(response, 503, { error: `at most ${MAX_VIEW_STREAMS} pages may be open at once` });
      return;
    }
    // A stream lives as long as the page: no request timeout for it.
    request.socket.setTimeout(0);
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    response.write('retry: 2000\n\n');
    const stream: Stream = { response, sent: '' };
    this.#streams.add(stream);
    counters.increment('http.view_streams');
    response.on('close', () => {
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.close();
    });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.#push(), STREAM_CHECK_MS);
      this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    }
    void this.#push();
  }

  /** Sends each open page the snapshot, if it differs from what that page has. */
  async #push(): Promise<void> {
    if (this.#streams.size === 0) return;
    let json: string;
    try {
      json = JSON.stringify(await this.#snapshot());
    } catch (error) {
      this.#options.counters.increment('http.errors');
      this.#options.log.warn({ err: error }, 'http: the web view snapshot failed');
      return;
    }
    for (const stream of this.#streams) {
      if (stream.sent === json) continue;
      if (stream.response.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        this.#options.counters.increment('http.view_updates_skipped');
        continue;
      }
      stream.sent = json;
      stream.response.write(`event: view\ndata: ${json}\n\n`);
    }
  }

  #beat(): void {
    for (const stream of this.#streams) stream.response.write(': still here\n\n');
  }

  async #snapshot() {
    const { api } = this.#options;
    const nowMs = Date.now();
    if (this.#status === undefined || nowMs - this.#status.atMs > STATUS_MAX_AGE_MS)
      this.#status = { report: await api.status(), atMs: nowMs };
    return meshView({
      status: this.#status.report,
      rssBytes: process.memoryUsage.rss(),
      topology: api.topology(),
      peers: api.peers(),
      actions: api.actions(),
      sensors: api.sensors(),
      leases: api.leases(),
      transfers: api.transfers(),
    });
  }

  /** The page's call form: calls an action, answers the rows `nearmesh call --json` prints. */
  async #call(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const call = await this.#jsonPost(request, response, callBody);
    if (call === undefined) return;
    this.#options.counters.increment('http.calls');
    await answer(response, () =>
      this.#options.api.call({
        target: call.target,
        action: call.action,
        // `args` came out of JSON.parse, so every value in it is JSON.
        args: call.args as JsonObject,
        timeout_ms: CALL_TIMEOUT_MS,
      }),
    );
  }

  /** A sensor's "read now": reads it, answers the reading `nearmesh read --json` prints. */
  async #read(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const read = await this.#jsonPost(request, response, readBody);
    if (read === undefined) return;
    this.#options.counters.increment('http.reads');
    await answer(response, () => this.#options.api.read(read.peer, read.sensor));
  }

  /**
   * The body of a POST from the page, validated; undefined when it was refused (answered here). A JSON body
   * only, from this page's own origin: a browser sends a cross-site JSON POST only after a CORS preflight this
   * server never grants, and an Origin naming another site is refused.
   */
  async #jsonPost<T extends z.ZodTypeAny>(
    request: IncomingMessage,
    response: ServerResponse,
    schema: T,
  ): Promise<z.output<T> | undefined> {
    const refuse = (status: number, error: string): undefined => {
      this.#options.counters.increment('http.posts_refused');
      sendJson(response, status, { error });
      return undefined;
    };
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST');
      return refuse(405, 'only POST');
    }
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `http://${request.headers.host}`)
      return refuse(403, "a request must come from this agent's own page");
    if (!String(request.headers['content-type'] ?? '').startsWith('application/json'))
      return refuse(415, 'expected Content-Type: application/json');
    const body = await readRequestBody(request, MAX_POST_BODY_BYTES);
    if (body === undefined) return refuse(413, `a request is at most ${MAX_POST_BODY_BYTES} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return refuse(400, 'the body is not JSON');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) return refuse(400, `expected ${schema.description ?? 'another body'}`);
    return parsed.data as z.output<T>;
  }
}

/** Answers with what `run` gives (200), or its error (422, with the error's code when it has one). */
async function answer(response: ServerResponse, run: () => Promise<unknown>): Promise<void> {
  try {
    sendJson(response, 200, await run());
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    sendJson(response, 422, {
      error: error instanceof Error ? error.message : String(error),
      ...(typeof code === 'string' && { code }),
    });
  }
}

function onlyGet(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return true;
  response.setHeader('Allow', 'GET, HEAD');
  sendJson(response, 405, { error: 'only GET' });
  return false;
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  response.end(JSON.stringify(value));
}

/** The request's body, or undefined once it exceeds `limit` (the rest is not read). */
function readRequestBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners('data');
        request.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
