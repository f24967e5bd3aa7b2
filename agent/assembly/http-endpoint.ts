// The agent's HTTP endpoint (/metrics) as a part of the agent, loaded only when served. As with MQTT, the
// built-in default port may be taken (another agent on the host): that costs a warning, not the agent; a
// port the config asked for must be served or the agent does not start.
import type { HttpState } from '../api.js';
import type { Counters } from '../core/counters.js';
import type { HostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import type { HttpConfig } from '../http/config.js';
import type { HttpServer } from '../http/http-server.js';
import type { WebViewApi } from '../http/web-view.js';

export interface HttpEndpointOptions {
  http: HttpConfig;
  listen: HostPort;
  api: WebViewApi;
  counters: Counters;
  log: Logger;
}

export class HttpEndpoint {
  #server: HttpServer | undefined;
  #listening: string | undefined;
  /** Why the default endpoint is not served (its port was taken), for status. */
  #unavailable: string | undefined;

  constructor(private readonly options: HttpEndpointOptions) {}

  async start(): Promise<void> {
    const { http, listen, api, counters, log } = this.options;
    const [{ HttpServer }, users] = await Promise.all([import('../http/http-server.js'), this.#users()]);
    const server = new HttpServer({
      api,
      ...(users !== undefined && { users }),
      counters,
      log,
    });
    try {
      const address = await server.listen(listen.host, listen.port);
      this.#listening = `${address.address}:${address.port}`;
      log.info({ listen: this.#listening }, 'HTTP: serving the web view and /metrics');
    } catch (error) {
      await server.close();
      if (!http.listenIsDefault) throw error;
      this.#unavailable = error instanceof Error ? error.message : String(error);
      log.warn(`HTTP: not serving (${this.#unavailable}); set [http] listen to a free "host:port", or false`);
      return;
    }
    this.#server = server;
  }

  async stop(): Promise<void> {
    await this.#server?.close();
  }

  state(): HttpState {
    if (this.#listening !== undefined) return { state: 'on', listen: this.#listening };
    if (this.#unavailable !== undefined) return { state: 'unavailable', reason: this.#unavailable };
    return { state: 'off' };
  }

  /** The users of [http] password_file; a bad file rejects here and the agent does not start. */
  async #users() {
    const path = this.options.http.passwordFile;
    if (path === undefined) return undefined;
    const [{ parsePasswordFile }, { readSecurityFile }] = await Promise.all([
      import('../gateway/password-file.js'),
      import('../gateway/security-file.js'),
    ]);
    return parsePasswordFile(await readSecurityFile('http.password_file', path), path);
  }
}
