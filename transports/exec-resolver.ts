// The exec resolver: a program of the user's (argv, no shell) that knows where peers are (a DHCP lease file, a
// DNS SRV lookup, an inventory service) and says so on its stdout, one JSON object per line:
//   {"found": {"address": "10.0.2.7:7450", "peer": "0123456789abcdef", "name": "pump"}}
//   {"lost": {"address": "10.0.2.7:7450"}}
// It runs for as long as the agent does; when it exits it is started again with back-off, and what it had
// found is lost until it says so again. A bad line is counted and reported at most once a minute; its stderr
// goes to the agent's log. docs/RESOLVERS.md has the format and an example.
import { type ChildProcess, spawn } from 'node:child_process';
import { Backoff } from '../agent/core/backoff.js';
import { TypedEmitter } from '../agent/core/events.js';
import { checkHostPort } from '../agent/core/host-port.js';
import { LineReader } from '../agent/core/line-reader.js';
import { isPeerId } from '../agent/core/peer-id.js';
import type { PeerCandidate, Resolver, ResolverEvents, ResolverHealth } from './resolver.js';

/** A line longer than this is bad (a candidate fits in ~200 bytes). */
const MAX_LINE_BYTES = 4096;
/** How long a program may take to end after SIGTERM before it is killed. */
const STOP_GRACE_MS = 2_000;
/** After its exit, how long the program's leftovers may hold its stdout open before we stop reading. */
const DRAIN_MS = 1_000;
const MAX_NAME_CHARS = 63;

export interface ExecResolverOptions {
  name: string;
  /** The program and its arguments; run without a shell. */
  argv: readonly string[];
  /** Each line the program writes on stderr (the agent logs it under the resolver's name). */
  stderr: (line: string) => void;
  /** Candidates it may hold at a time; more are refused and counted. */
  maxCandidates: number;
  /** Restart back-off after an exit. */
  restart?: { initialMs: number; maxMs: number };
  /** A run at least this long counts as healthy: the next restart starts the back-off over. */
  stableAfterMs?: number;
  /** Bad lines are reported at most once per this. */
  reportIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Why a line was not taken. */
type LineVerdict =
  | { ok: true; event: 'found' | 'lost'; candidate: PeerCandidate }
  | { ok: false; reason: string };

/** Reads one stdout line of the program's: `{"found": {...}}` or `{"lost": {...}}`. */
export function readResolverLine(line: string, source: string): LineVerdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { ok: false, reason: 'not a JSON object' };
  const keys = Object.keys(parsed);
  const event = keys[0];
  if (keys.length !== 1 || (event !== 'found' && event !== 'lost'))
    return { ok: false, reason: 'expected one key, "found" or "lost"' };
  const body = (parsed as Record<string, unknown>)[event];
  if (typeof body !== 'object' || body === null) return { ok: false, reason: `"${event}" is not an object` };
  const { address, peer, name, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return { ok: false, reason: `unknown key ${JSON.stringify(unknown[0])}` };
  if (typeof address !== 'string') return { ok: false, reason: '"address" is missing' };
  const hostPort = checkHostPort(address);
  if (!hostPort.ok) return { ok: false, reason: `"address": ${hostPort.expected}` };
  if (peer !== undefined && (typeof peer !== 'string' || !isPeerId(peer)))
    return { ok: false, reason: '"peer" is not a peer id (16 lowercase hex digits, `nearmesh id`)' };
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS))
    return { ok: false, reason: `"name" is not 1..${MAX_NAME_CHARS} characters` };
  return {
    ok: true,
    event,
    candidate: {
      medium: 'wifi',
      address,
      ...(peer !== undefined && { peerId: peer }),
      ...(name !== undefined && { name }),
      source,
    },
  };
}

export class ExecResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name: string;
  readonly maxCandidates: number;
  /** Lines that were not a found/lost object, over the resolver's life. */
  badLines = 0;
  /** Found candidates beyond maxCandidates, not taken. */
  dropped = 0;
  /** How many times the program was started. */
  runs = 0;
  readonly #options: ExecResolverOptions;
  readonly #backoff: Backoff;
  readonly #candidates = new Map<string, PeerCandidate>();
  #child: ChildProcess | undefined;
  #ended: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #isRunning = false;
  #state: 'running' | 'restarting' | 'stopped' = 'stopped';
  #detail: string | undefined;
  /** Bad lines since the last report, with the last reason, reported at most once per reportIntervalMs. */
  #unreported = { lines: 0, reason: '', lastReportMs: Number.NEGATIVE_INFINITY };

  constructor(options: ExecResolverOptions) {
    super();
    if (options.argv.length === 0) throw new TypeError('exec resolver: argv is empty');
    this.name = options.name;
    this.maxCandidates = options.maxCandidates;
    this.#options = options;
    this.#backoff = new Backoff(options.restart ?? { initialMs: 1_000, maxMs: 60_000 });
  }

  async start(): Promise<void> {
    if (this.#isRunning) return;
    this.#isRunning = true;
    this.#run();
  }

  async stop(): Promise<void> {
    this.#isRunning = false;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const child = this.#child;
    if (child !== undefined) {
      signalGroup(child, 'SIGTERM');
      const killer = setTimeout(() => signalGroup(child, 'SIGKILL'), STOP_GRACE_MS);
      await this.#ended;
      clearTimeout(killer);
    }
    this.#candidates.clear();
    this.#state = 'stopped';
    this.#detail = undefined;
  }

  /** The running program's pid (its process group's too); undefined between runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  health(): ResolverHealth {
    return { state: this.#state, ...(this.#detail !== undefined && { detail: this.#detail }) };
  }

  /** The candidates the program reported and did not take back. */
  candidates(): PeerCandidate[] {
    return [...this.#candidates.values()].map((candidate) => ({ ...candidate }));
  }

  #run(): void {
    const [program, ...args] = this.#options.argv as [string, ...string[]];
    const startedAtMs = Date.now();
    this.runs++;
    // Its own process group: stop() ends what it started too (a `sleep` inside a shell loop).
    const child = spawn(program, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...(this.#options.env ?? process.env), NEARMESH_RESOLVER: this.name },
    });
    this.#child = child;
    this.#state = 'running';
    this.#detail = `pid ${child.pid ?? '-'}`;
    const stdout = new LineReader(MAX_LINE_BYTES);
    let isSkippingLongLine = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      let rest = chunk;
      if (isSkippingLongLine) {
        const newline = rest.indexOf(10);
        if (newline === -1) return;
        isSkippingLongLine = false;
        rest = rest.subarray(newline + 1);
      }
      const lines = stdout.push(rest);
      if (lines === 'too-long') {
        // The lines before the long one were taken by an earlier push; what is buffered is the long one.
        isSkippingLongLine = true;
        this.#badLine(`a line longer than ${MAX_LINE_BYTES} bytes`);
        return;
      }
      for (const line of lines) this.#line(line);
    });
    const stderr = new LineReader(MAX_LINE_BYTES);
    child.stderr?.on('data', (chunk: Buffer) => {
      const lines = stderr.push(chunk);
      if (lines === 'too-long') return;
      for (const line of lines) if (line.trim() !== '') this.#options.stderr(line);
    });
    let spawnError: Error | undefined;
    child.on('error', (error) => {
      spawnError = error;
    });
    this.#ended = new Promise<void>((resolve) => {
      let exitDescription = '';
      const finish = (): void => {
        clearTimeout(drainTimer);
        resolve();
        this.#exited(exitDescription, Date.now() - startedAtMs);
      };
      let drainTimer: NodeJS.Timeout | undefined;
      child.once('close', (code, signal) => {
        exitDescription = describeExit(code, signal, spawnError);
        finish();
      });
      child.once('exit', (code, signal) => {
        exitDescription = describeExit(code, signal, spawnError);
        // Leftovers of the program's may hold its stdout open: do not wait for them forever.
        drainTimer = setTimeout(() => {
          signalGroup(child, 'SIGKILL');
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, DRAIN_MS);
        drainTimer.unref();
      });
    });
  }

  #line(text: string): void {
    if (!this.#isRunning || text.trim() === '') return;
    const verdict = readResolverLine(text, this.name);
    if (!verdict.ok) {
      this.#badLine(`${verdict.reason}: ${JSON.stringify(text.slice(0, 120))}`);
      return;
    }
    const { candidate } = verdict;
    if (verdict.event === 'lost') {
      const held = this.#candidates.get(candidate.address);
      if (held === undefined) return;
      this.#candidates.delete(candidate.address);
      this.emit('lost', { ...held });
      return;
    }
    if (!this.#candidates.has(candidate.address) && this.#candidates.size >= this.maxCandidates) {
      this.dropped++;
      this.#report(`holds ${this.maxCandidates} candidates (max_candidates): more are dropped`);
      return;
    }
    this.#candidates.set(candidate.address, candidate);
    this.emit('found', { ...candidate });
  }

  #badLine(reason: string): void {
    this.badLines++;
    this.#unreported.lines++;
    this.#unreported.reason = reason;
    this.#report();
  }

  /** Says what went wrong at most once per interval: the bad lines since the last report, or `message`. */
  #report(message?: string): void {
    const nowMs = Date.now();
    const unreported = this.#unreported;
    if (nowMs - unreported.lastReportMs < (this.#options.reportIntervalMs ?? 60_000)) return;
    unreported.lastReportMs = nowMs;
    const text =
      message ??
      `${unreported.lines} bad line${unreported.lines === 1 ? '' : 's'} from ${this.#options.argv[0]} ` +
        `(${this.badLines} in all), the last: ${unreported.reason}; expected {"found": {"address": "host:port"}} or {"lost": {...}}`;
    unreported.lines = 0;
    this.emit('warning', new Error(text));
  }

  #exited(description: string, ranMs: number): void {
    this.#child = undefined;
    if (!this.#isRunning) return;
    // What it found is not vouched for by anyone now; it is found again when the program says so.
    const held = [...this.#candidates.values()];
    this.#candidates.clear();
    for (const candidate of held) this.emit('lost', { ...candidate });
    if (ranMs >= (this.#options.stableAfterMs ?? 60_000)) this.#backoff.reset();
    const delayMs = this.#backoff.next();
    this.#state = 'restarting';
    this.#detail = `${description}; restarting in ${(delayMs / 1000).toFixed(1)} s`;
    this.emit(
      'warning',
      new Error(`${this.#options.argv[0]} ${description}; restarting in ${(delayMs / 1000).toFixed(1)} s`),
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#isRunning) this.#run();
    }, delayMs);
    this.#restartTimer.unref();
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, error: Error | undefined): string {
  if (error !== undefined) return `could not run: ${error.message}`;
  if (signal !== null) return `was ended by ${signal}`;
  return `exited with code ${code ?? '?'}`;
}

/** Signals the program's whole process group; a group already gone is fine. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
