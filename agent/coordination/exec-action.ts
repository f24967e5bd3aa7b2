// An action backed by a local program: the call's arguments arrive as one JSON object on stdin, who
// is calling in NEARMESH_* environment variables, and whatever the program prints is the result. The
// program is untrusted as far as the agent's health goes: see run-process.ts for how it is contained.
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import {
  type ActionHandler,
  type CallContext,
  type CallResult,
  errorResult,
  type JsonObject,
  type StartRun,
  settledStart,
} from './handler.js';
import { parseOutput } from './output.js';
import { outcomeError, type RunOptions, runProcess } from './run-process.js';

export const DEFAULT_ACTION_TIMEOUT_MS = 10_000;

export interface ExecActionOptions {
  /** The action's name, passed as NEARMESH_ACTION and used in messages. */
  readonly name: string;
  /** The program and its arguments, run without a shell. */
  readonly exec: readonly string[];
  /** Upper bound on one run; the call's own deadline can cut it shorter. Default 10 s. */
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Extra environment on top of the agent's. */
  readonly env?: Readonly<Record<string, string>>;
  readonly maxStdoutBytes?: number;
  readonly killGraceMs?: number;
  readonly logger?: Logger;
  /** Counts failures as `coordination.exec_<code>` (e.g. coordination.exec_timeout). */
  readonly counters?: Counters;
}

export class ExecAction implements ActionHandler {
  readonly kind = 'exec';
  readonly #options: ExecActionOptions;

  constructor(options: ExecActionOptions) {
    this.#options = options;
  }

  async invoke(args: JsonObject, context: CallContext): Promise<CallResult> {
    const start = await this.prepare(args, context);
    return start();
  }

  /** The program's stdin and environment are built here; its timeout and the spawn wait for the start. */
  async prepare(args: JsonObject, context: CallContext): Promise<StartRun> {
    // Only a bug of ours lands in these catches; the interface promises a result, not a rejection.
    const internal = (error: unknown): CallResult =>
      errorResult('internal', `action '${this.#options.name}' failed: ${String(error)}`);
    try {
      const run: Omit<RunOptions, 'timeoutMs'> = {
        argv: this.#options.exec,
        stdin: JSON.stringify(args),
        env: this.#environment(context),
        cwd: this.#options.cwd,
        signal: context.signal,
        maxStdoutBytes: this.#options.maxStdoutBytes,
        killGraceMs: this.#options.killGraceMs,
      };
      return () => this.#run(run, context).catch(internal);
    } catch (error) {
      return settledStart(internal(error));
    }
  }

  async #run(run: Omit<RunOptions, 'timeoutMs'>, context: CallContext): Promise<CallResult> {
    const what = `action '${this.#options.name}'`;
    const timeoutMs = Math.min(
      this.#options.timeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS,
      context.deadlineMs - Date.now(),
    );
    if (timeoutMs <= 0)
      return this.#failed('timeout', `${what}: the call's deadline had already passed`, context);
    const outcome = await runProcess({ ...run, timeoutMs });
    const error = outcomeError(outcome, what, timeoutMs);
    if (error !== null) return this.#failed(error.code, error.message, context);
    return { ok: true, value: outcome.kind === 'exited' ? parseOutput(outcome.stdout) : '' };
  }

  #environment(context: CallContext): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.#options.env };
    // Never let a value inherited from the agent's own environment pose as the caller's name.
    delete env.NEARMESH_CALLER_NAME;
    env.NEARMESH_CALLER = context.caller;
    if (context.callerName !== undefined) env.NEARMESH_CALLER_NAME = context.callerName;
    env.NEARMESH_CALL_ID = context.callId;
    env.NEARMESH_ACTION = this.#options.name;
    return env;
  }

  #failed(code: string, message: string, context?: CallContext): CallResult {
    this.#options.counters?.increment(`coordination.exec_${code.replaceAll('-', '_')}`);
    this.#options.logger?.warn(
      { action: this.#options.name, code, callId: context?.callId, caller: context?.caller },
      message,
    );
    return errorResult(code, message);
  }
}
