// The calling side of a remote call: one call per target (a group or "all" is resolved to its announced
// members), sent reliably, and one result per target: ok, error, or timeout.
import { createHash, randomBytes } from 'node:crypto';
import { NearmeshError } from '../core/errors.js';
import {
  CALL_ID_BYTES,
  type CallMessage,
  MAX_CALL_TIMEOUT_MS,
  type ResultMessage,
} from '../protocol/coordination.js';
import type { JsonObject, JsonValue } from '../protocol/json-cbor.js';
import { MAX_FIRE_AHEAD_MS } from './executor.js';

export interface CallTarget {
  readonly id: string;
  readonly name: string;
}

export interface CallRequest {
  /** A peer id or name, "group:NAME" or "all". */
  readonly target: string;
  readonly action: string;
  readonly args: JsonObject;
  readonly timeoutMs: number;
  /** Fire at this instant of this agent's clock; absent: as soon as it arrives. */
  readonly fireAt?: number;
  /** An idempotency key: the same key from this agent is the same call (a retry runs once). */
  readonly key?: string;
}

export interface CallOutcome {
  peer: string;
  name: string;
  status: 'ok' | 'error' | 'timeout';
  value?: JsonValue;
  error?: { code: string; message: string };
  /** When the handler started, in this agent's clock (ms since the epoch); null when it never ran. */
  firedAtMs: number | null;
}

export interface CallerOptions {
  /** This agent's peer id: idempotency keys are per caller. */
  selfId: string;
  /** The agents a call target means (an unknown peer or an empty group gives none). */
  resolve(target: string): CallTarget[];
  /** Hands a call to a target: over the mesh, or to this agent's own executor. */
  deliver(target: CallTarget, call: CallMessage): Promise<void>;
}

/** Results arriving for calls nobody waits for any more are dropped; this long after the deadline. */
const RESULT_GRACE_MS = 2_000;

export class Caller {
  readonly #options: CallerOptions;
  /** Waiting targets, by call id (hex) and peer id. */
  readonly #waiting = new Map<string, Map<string, (result: ResultMessage) => void>>();

  constructor(options: CallerOptions) {
    this.#options = options;
  }

  async call(request: CallRequest): Promise<CallOutcome[]> {
    // Checked here, once, for the CLI, rules and MQTT alike: a peer would drop a longer call as malformed.
    if (request.timeoutMs > MAX_CALL_TIMEOUT_MS) {
      throw new NearmeshError(
        'bad-timeout',
        `a call may take at most ${MAX_CALL_TIMEOUT_MS / 60_000} minutes`,
      );
    }
    if (request.fireAt !== undefined && request.fireAt - Date.now() > MAX_FIRE_AHEAD_MS) {
      throw new NearmeshError('too-far-ahead', 'a synchronised call may be at most a day ahead');
    }
    const targets = this.#options.resolve(request.target);
    const callId = request.key === undefined ? randomBytes(CALL_ID_BYTES) : this.#keyedId(request.key);
    const waitMs =
      Math.max(0, (request.fireAt ?? Date.now()) - Date.now()) + request.timeoutMs + RESULT_GRACE_MS;
    return Promise.all(targets.map((target) => this.#callOne(target, callId, request, waitMs)));
  }

  /** A RESULT from the mesh (or from this agent's executor); false when no call to `from` waits for it. */
  onResult(from: string, result: ResultMessage): boolean {
    const settle = this.#waiting.get(Buffer.from(result.callId).toString('hex'))?.get(from);
    if (settle === undefined) return false;
    settle(result);
    return true;
  }

  #callOne(
    target: CallTarget,
    callId: Uint8Array,
    request: CallRequest,
    waitMs: number,
  ): Promise<CallOutcome> {
    const call: CallMessage = {
      kind: 'call',
      callId,
      action: request.action,
      args: request.args,
      fireAt: request.fireAt ?? null,
      timeoutMs: request.timeoutMs,
    };
    const idHex = Buffer.from(callId).toString('hex');
    return new Promise<CallOutcome>((resolve) => {
      let byPeer = this.#waiting.get(idHex);
      if (byPeer === undefined) {
        byPeer = new Map();
        this.#waiting.set(idHex, byPeer);
      }
      const finish = (outcome: CallOutcome): void => {
        clearTimeout(timer);
        const waiting = this.#waiting.get(idHex);
        waiting?.delete(target.id);
        if (waiting?.size === 0) this.#waiting.delete(idHex);
        resolve(outcome);
      };
      const timer = setTimeout(
        () => finish({ peer: target.id, name: target.name, status: 'timeout', firedAtMs: null }),
        waitMs,
      );
      byPeer.set(target.id, (result) => finish(toOutcome(target, result)));
      this.#options.deliver(target, call).catch((error: unknown) =>
        finish({
          peer: target.id,
          name: target.name,
          status: 'error',
          error: { code: errorCode(error), message: error instanceof Error ? error.message : String(error) },
          firedAtMs: null,
        }),
      );
    });
  }

  /** The same key from the same agent always names the same call. */
  #keyedId(key: string): Uint8Array {
    return createHash('sha256')
      .update(`nearmesh-call-key\0${this.#options.selfId}\0${key}`)
      .digest()
      .subarray(0, CALL_ID_BYTES);
  }
}

function toOutcome(target: CallTarget, result: ResultMessage): CallOutcome {
  const base = { peer: target.id, name: target.name, firedAtMs: result.firedAt };
  return result.outcome.ok
    ? { ...base, status: 'ok', value: result.outcome.value }
    : { ...base, status: 'error', error: result.outcome.error };
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : 'internal';
}
