// python3-cbor2, a second independent CBOR implementation (after cborg), for checking that what we write
// is deterministic CBOR (RFC 8949 §4.2.1). One python3 process per batch: it reads a JSON list of requests
// on stdin and answers a JSON list of hex strings.
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

/**
 * Canonical is cbor2's `canonical=True`: map keys sorted length-first (the same as bytewise for keys of
 * one major type, which JSON keys are), floats in their shortest exact width. The pure-Python encoder,
 * not the C extension: Debian's python3-cbor2 5.4.6 extension writes float16 values of 32768 and above
 * (65504.0, 32768.0) as float32. A JSON number that is an integer within ±(2^53 − 1) is an integer and
 * any other a float, as our encoder (and JavaScript) has it.
 */
const SCRIPT = `
import json, sys
from cbor2 import decoder, encoder

SAFE = 2**53 - 1

def number(text):
    value = int(text)
    return value if -SAFE <= value <= SAFE else float(text)

def canonical(request):
    kind, text = request
    value = json.loads(text, parse_int=number) if kind == "json" else decoder.loads(bytes.fromhex(text))
    return encoder.dumps(value, canonical=True).hex()

json.dump([canonical(request) for request in json.load(sys.stdin)], sys.stdout)
`;

/** Why cbor2 cannot run here, or undefined when it can. */
export function cbor2Missing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import cbor2.encoder, cbor2.decoder'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${PYTHON} cannot run (apt-get install python3 python3-cbor2)`;
  if (probe.status !== 0) return 'python3-cbor2 is not installed (apt-get install python3-cbor2)';
  return undefined;
}

type Cbor2Request = ['json', string] | ['hex', string];

function run(requests: readonly Cbor2Request[]): string[] {
  const child = spawnSync(PYTHON, ['-c', SCRIPT], {
    input: JSON.stringify(requests),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`cbor2 failed: ${child.stderr || child.error?.message}`);
  return JSON.parse(child.stdout) as string[];
}

/** cbor2's canonical encoding (hex) of each JSON text (which may say NaN, Infinity and -0.0). */
export function cbor2CanonicalOfJson(texts: readonly string[]): string[] {
  return run(texts.map((text) => ['json', text]));
}

/** cbor2's canonical re-encoding (hex) of what it decodes from each hex: the same hex when that is canonical. */
export function cbor2Recoded(hexes: readonly string[]): string[] {
  return run(hexes.map((hex) => ['hex', hex]));
}
