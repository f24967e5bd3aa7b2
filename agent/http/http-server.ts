// The agent's HTTP endpoint: `GET /metrics` in the Prometheus text format and the web view (web-view.ts), read
// through the same typed agent API the CLI uses. Bounded like every front end: connections at once, time to a
// whole request, small request bodies; with users (a mosquitto_passwd file) every request needs HTTP Basic
// credentials.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { listening } from '../core/listen.js';
import type { Logger } from '../core/logger.js';
import { type PasswordHash, verifyPasswordOffLoop } from '../core/password-hash.js';
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from './prometheus.js';
import type { WebView, WebViewApi } from './web-view.js';

/** Connections open at once: a scraper and a few people's browsers, not a crowd. */
const MAX_CONNECTIONS = 32;
/** From a connection's first byte to a whole request (headers; nothing here takes a body). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface HttpServerOptions {
  /** The agent, as the CLI sees it. */
  api: WebViewApi;
  /** Users who may read, by name; undefined: no login asked (a loopback listener). */
  users?: ReadonlyMap<string, PasswordHash>;
  counters: Counters;
  log: Logger;
}

export class HttpServer {
  readonly #options: HttpServerOptions;
  /** Loaded on the first request for it: an agent only scraped never holds the web view's code. */
  #view: Promise<WebView> | undefined;
  #server: Server | undefined;

  constructor(options: HttpServerOptions) {
    this.#options = options;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        this.#options.counters.increment('http.errors');
        this.#options.log.warn({ err: error }, 'http: a request failed');
        if (!response.headersSent) reply(response, 500, 'internal error\n');
        else response.destroy();
      });
    });
    server.maxConnections = MAX_CONNECTIONS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.headersTimeout = REQUEST_TIMEOUT_MS;
    try {
      await listening(server, port, host);
    } catch (error) {
      throw new NearmeshError('http', `cannot listen on ${host}:${port}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    server.on('error', (error) => this.#options.log.warn({ err: error }, 'http server error'));
    this.#server = server;
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    void this.#view?.then((view) => view.close());
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { counters } = this.#options;
    counters.increment('http.requests');
    if (!(await this.#authorized(request))) {
      counters.increment('http.auth_failed');
      response.setHeader('WWW-Authenticate', 'Basic realm="nearmesh", charset="UTF-8"');
      reply(response, 401, 'credentials required\n');
      return;
    }
    const path = new URL(request.url ?? '/', 'http://agent').pathname;
    if (path !== '/metrics') {
      if (!(await (await this.#webView()).handle(path, request, response)))
        reply(response, 404, 'not found: this agent serves its web view at / and metrics at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      reply(response, 405, 'only GET\n');
      return;
    }
    const { api } = this.#options;
    const body = renderMetrics(await api.status(), api.peers(), process.memoryUsage.rss());
    response.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  #webView(): Promise<WebView> {
    const { api, counters, log } = this.#options;
    this.#view ??= import('./web-view.js').then(({ WebView }) => new WebView({ api, counters, log }));
    return this.#view;
  }

  /** True without users; with them, when the request's Basic credentials match one (checked off the loop). */
  async #authorized(request: IncomingMessage): Promise<boolean> {
    const users = this.#options.users;
    if (users === undefined) return true;
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Basic ')) return false;
    const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const stored = users.get(decoded.slice(0, colon));
    return stored !== undefined && (await verifyPasswordOffLoop(stored, decoded.slice(colon + 1)));
  }
}

function reply(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(text);
}
