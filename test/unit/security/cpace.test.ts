// CPace (CPACE-RISTR255-SHA512) against the CFRG draft's published vectors, step by step and both ways
// (each side computes the other's expected values), and against a second implementation on libsodium's
// ristretto255 (Debian's libsodium23, through Python's ctypes) for random inputs.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  cpaceParty,
  generatorOf,
  generatorString,
  intermediateKey,
  lvCat,
  prependLen,
  publicShare,
  sampleScalar,
  sharedPoint,
  transcriptIr,
} from '../../../agent/security/cpace.js';
import { describeWhenAvailable } from '../../support/requirements.js';

const vector = JSON.parse(
  readFileSync(new URL('../../fixtures/cpace-ristretto255-sha512.json', import.meta.url), 'utf8'),
) as Record<
  | 'PRS'
  | 'CI'
  | 'sid'
  | 'generator_string'
  | 'generator_hash'
  | 'g'
  | 'ADa'
  | 'ADb'
  | 'ya'
  | 'Ya'
  | 'yb'
  | 'Yb'
  | 'K'
  | 'transcript_ir'
  | 'ISK_IR',
  string
> & {
  points: { valid: { s: string; X: string; sX: string }; invalid: string[] };
};
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');
const prs = hex(vector.PRS);
const ci = hex(vector.CI);
const sid = hex(vector.sid);

describe('CPace string helpers (draft appendix vectors)', () => {
  it('prepend_len and lv_cat', () => {
    expect(toHex(prependLen(new Uint8Array(0)))).toBe('00');
    expect(toHex(prependLen(new TextEncoder().encode('1234')))).toBe('0431323334');
    const long = Uint8Array.from({ length: 128 }, (_, i) => i);
    expect(toHex(prependLen(long).subarray(0, 3))).toBe('800100');
    const enc = new TextEncoder();
    expect(toHex(lvCat(enc.encode('1234'), enc.encode('5'), new Uint8Array(0), enc.encode('678')))).toBe(
      '043132333401350003363738',
    );
  });
});

describe('CPACE-RISTR255-SHA512 vectors', () => {
  it('derives the generator string, its hash and the generator', () => {
    expect(toHex(generatorString(prs, ci, sid))).toBe(vector.generator_string);
    expect(toHex(generatorOf(prs, ci, sid))).toBe(vector.g);
  });

  it('computes both public shares from the given scalars', () => {
    expect(toHex(publicShare(hex(vector.ya), prs, ci, sid))).toBe(vector.Ya);
    expect(toHex(publicShare(hex(vector.yb), prs, ci, sid))).toBe(vector.Yb);
  });

  it('reaches the same K from either side', () => {
    expect(toHex(sharedPoint(hex(vector.ya), hex(vector.Yb)))).toBe(vector.K);
    expect(toHex(sharedPoint(hex(vector.yb), hex(vector.Ya)))).toBe(vector.K);
  });

  it('builds the initiator-responder transcript and ISK', () => {
    const transcript = transcriptIr(hex(vector.Ya), hex(vector.ADa), hex(vector.Yb), hex(vector.ADb));
    expect(toHex(transcript)).toBe(vector.transcript_ir);
    expect(toHex(intermediateKey(sid, hex(vector.K), transcript))).toBe(vector.ISK_IR);
  });

  it('gives the vector ISK to both parties run with the vector scalars', () => {
    const a = cpaceParty({ prs, ci, sid, ad: hex(vector.ADa), isInitiator: true, scalar: hex(vector.ya) });
    const b = cpaceParty({ prs, ci, sid, ad: hex(vector.ADb), isInitiator: false, scalar: hex(vector.yb) });
    expect(toHex(a.share)).toBe(vector.Ya);
    expect(toHex(b.share)).toBe(vector.Yb);
    expect(toHex(a.finish(b.share, hex(vector.ADb)))).toBe(vector.ISK_IR);
    expect(toHex(b.finish(a.share, hex(vector.ADa)))).toBe(vector.ISK_IR);
  });

  it('multiplies a valid encoding and aborts on one that does not decode or is the identity', () => {
    const { valid, invalid } = vector.points;
    expect(toHex(sharedPoint(hex(valid.s), hex(valid.X)))).toBe(valid.sX);
    for (const bad of invalid) expect(sharedPoint(hex(valid.s), hex(bad))).toBeUndefined();
  });
});

describe('CPace with random scalars', () => {
  const run = (codeA: string, codeB: string) => {
    const enc = new TextEncoder();
    const a = cpaceParty({ prs: enc.encode(codeA), ci, sid, ad: enc.encode('a'), isInitiator: true });
    const b = cpaceParty({ prs: enc.encode(codeB), ci, sid, ad: enc.encode('b'), isInitiator: false });
    return [toHex(a.finish(b.share, enc.encode('b'))), toHex(b.finish(a.share, enc.encode('a')))];
  };

  it('agrees on ISK when both hold the same code, and on nothing when the codes differ', () => {
    const [same1, same2] = run('12345678901', '12345678901');
    expect(same1).toHaveLength(128);
    expect(same1).toBe(same2);
    const [other1, other2] = run('12345678901', '12345678902');
    expect(other1).not.toBe(other2);
  });

  it('draws a fresh share every run', () => {
    const enc = new TextEncoder();
    const options = { prs: enc.encode('1'), ci, sid, ad: new Uint8Array(0), isInitiator: true };
    expect(toHex(cpaceParty(options).share)).not.toBe(toHex(cpaceParty(options).share));
  });
});

const PYTHON = '/usr/bin/python3';
const SECOND = new URL('../../integration/children/cpace_libsodium.py', import.meta.url).pathname;

function libsodiumMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const probe = spawnSync(PYTHON, ['-c', 'import ctypes; ctypes.CDLL("libsodium.so.23")'], {
    encoding: 'utf8',
  });
  return probe.status === 0 ? undefined : 'libsodium.so.23 cannot be loaded (apt-get install libsodium23)';
}

describeWhenAvailable('CPace against libsodium (a second implementation)', libsodiumMissing(), () => {
  it('agrees on g, both shares, K and ISK for the draft vector and 20 random runs', () => {
    const runs = [
      {
        prs: vector.PRS,
        ci: vector.CI,
        sid: vector.sid,
        ya: vector.ya,
        yb: vector.yb,
        ada: vector.ADa,
        adb: vector.ADb,
      },
      ...Array.from({ length: 20 }, (_, i) => ({
        prs: randomBytes(1 + i * 7).toString('hex'),
        ci: randomBytes(i).toString('hex'),
        sid: randomBytes(16).toString('hex'),
        ya: toHex(sampleScalar()) as string,
        yb: toHex(sampleScalar()) as string,
        ada: randomBytes(i % 3).toString('hex'),
        adb: randomBytes(2).toString('hex'),
      })),
    ];
    const child = spawnSync(PYTHON, [SECOND], {
      input: runs.map((run) => JSON.stringify(run)).join('\n'),
      encoding: 'utf8',
    });
    expect(child.stderr).toBe('');
    const answers = child.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(answers).toHaveLength(runs.length);
    expect(answers[0]?.ISK).toBe(vector.ISK_IR);
    runs.forEach((run, i) => {
      const [prsB, ciB, sidB] = [hex(run.prs), hex(run.ci), hex(run.sid)];
      const a = cpaceParty({
        prs: prsB,
        ci: ciB,
        sid: sidB,
        ad: hex(run.ada),
        isInitiator: true,
        scalar: hex(run.ya),
      });
      const b = cpaceParty({
        prs: prsB,
        ci: ciB,
        sid: sidB,
        ad: hex(run.adb),
        isInitiator: false,
        scalar: hex(run.yb),
      });
      const answer = answers[i] as Record<string, string>;
      expect(toHex(generatorOf(prsB, ciB, sidB))).toBe(answer.g);
      expect([toHex(a.share), toHex(b.share)]).toEqual([answer.Ya, answer.Yb]);
      expect(answer.Ka).toBe(answer.Kb);
      expect(toHex(a.finish(b.share, hex(run.adb)))).toBe(answer.ISK);
      expect(toHex(b.finish(a.share, hex(run.ada)))).toBe(answer.ISK);
    });
  });
});
