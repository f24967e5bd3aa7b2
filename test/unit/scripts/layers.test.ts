// The layering rule of docs/ARCHITECTURE.md, as `npm run lint` checks it: the tree obeys it, and the rule
// catches what it exists to catch (an import up the layers, a circle, a folder placed in no layer).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

function cruise(cwd: string, paths: string[]): { status: number | null; output: string } {
  const result = spawnSync(DEPCRUISE, [...paths, '--config', CONFIG, '--output-type', 'err'], {
    cwd,
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A scratch tree with the project's folder names, holding the given TypeScript files. */
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-layers-'));
  scratch.push(dir);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext' } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('layering rule', () => {
  it('holds for the whole tree: no import up the layers, no circles', () => {
    const output = execFileSync(
      DEPCRUISE,
      ['agent', 'transports', 'boards', 'scripts', '--config', CONFIG, '--output-type', 'err'],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(output).toMatch(/no dependency violations found/);
  });

  it('fails on a transport that imports the link layer, naming both files', () => {
    const dir = tree({
      'agent/links/backoff.ts': 'export const delay = 1;\n',
      'transports/wifi/dialer.ts':
        "import { delay } from '../../agent/links/backoff.js';\nexport const x = delay;\n",
    });
    const { status, output } = cruise(dir, ['agent', 'transports']);
    expect(status).not.toBe(0);
    expect(output).toMatch(
      /no-upward-from-transports.*transports\/wifi\/dialer\.ts → agent\/links\/backoff\.ts/,
    );
  });

  it('fails on a circle within one layer, and on a folder placed in no layer', () => {
    const dir = tree({
      'agent/mesh/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'agent/mesh/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
      'agent/extras/tool.ts': "import { a } from '../mesh/a.js';\nexport const t = a;\n",
    });
    const { status, output } = cruise(dir, ['agent']);
    expect(status).not.toBe(0);
    expect(output).toMatch(/no-circular/);
    expect(output).toMatch(/every-module-in-a-layer.*agent\/extras\/tool\.ts/);
  });
});
