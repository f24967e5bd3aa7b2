// The web view's files, all shipped in the package (a Pi may be offline: no CDN): the page, its style and script
// (built into dist/agent/http/web), and cytoscape from node_modules. Read and gzipped once, on first request,
// and then held: about 150 KB, only on an agent whose page someone opened.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export interface WebAsset {
  readonly body: Buffer;
  /** The same bytes gzipped, for browsers that take it (all do). */
  readonly gzipped: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

const FILES: Readonly<Record<string, { url: () => URL; contentType: string }>> = {
  '/': { url: () => new URL('./web/index.html', import.meta.url), contentType: 'text/html; charset=utf-8' },
  '/assets/style.css': {
    url: () => new URL('./web/style.css', import.meta.url),
    contentType: 'text/css; charset=utf-8',
  },
  '/assets/app.js': {
    url: () => new URL('./web/app.js', import.meta.url),
    contentType: 'text/javascript; charset=utf-8',
  },
  '/assets/cytoscape.esm.min.mjs': {
    url: () => new URL(import.meta.resolve('cytoscape/dist/cytoscape.esm.min.mjs')),
    contentType: 'text/javascript; charset=utf-8',
  },
};

export class WebAssets {
  readonly #loaded = new Map<string, Promise<WebAsset>>();

  /** Whether `path` is one of the page's files. */
  has(path: string): boolean {
    return Object.hasOwn(FILES, path);
  }

  /** The file at `path`; rejects when it is missing from the installation (a broken build). */
  get(path: string): Promise<WebAsset> {
    const file = FILES[path];
    if (file === undefined) return Promise.reject(new Error(`no web asset ${path}`));
    let asset = this.#loaded.get(path);
    if (asset === undefined) {
      asset = load(fileURLToPath(file.url()), file.contentType);
      // A failed read is not kept: the next request tries again.
      asset.catch(() => this.#loaded.delete(path));
      this.#loaded.set(path, asset);
    }
    return asset;
  }
}

async function load(path: string, contentType: string): Promise<WebAsset> {
  const body = await readFile(path);
  return {
    body,
    gzipped: gzipSync(body, { level: 9 }),
    contentType,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

/** The Content-Security-Policy of the page: its own files only, and the one inline import map, by hash. */
export function pageSecurityPolicy(page: Buffer): string {
  const importMap = /<script type="importmap">([^<]*)<\/script>/.exec(page.toString('utf8'))?.[1] ?? '';
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'self'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
  ].join('; ');
}
