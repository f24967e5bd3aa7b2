// What a rule does when it fires: a call, written as on the console (`call group:fans fan.set {"on":true}`).
// Parsed once, when the config loads, so a typo is a config error and not a silent rule.
import { NearmeshError } from '../core/errors.js';
import type { JsonObject } from '../protocol/json-cbor.js';

export interface RuleAction {
  readonly kind: 'call';
  /** A peer id or name, "group:NAME" or "all". */
  readonly target: string;
  readonly action: string;
  readonly args: JsonObject;
}

export class RuleActionError extends NearmeshError {
  constructor(message: string) {
    super('bad-rule-action', message);
  }
}

const USAGE = 'expected "call <peer|group:NAME|all> <action> [json-object]"';

export function parseRuleAction(text: string): RuleAction {
  const match = /^\s*call\s+(\S+)\s+(\S+)\s*(.*?)\s*$/s.exec(text);
  if (match === null) throw new RuleActionError(USAGE);
  const [, target, action, rest] = match as unknown as [string, string, string, string];
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(action) || action.length > 63) {
    throw new RuleActionError(`${USAGE}; "${action}" is not an action name`);
  }
  if (rest === '') return { kind: 'call', target, action, args: {} };
  let args: unknown;
  try {
    args = JSON.parse(rest);
  } catch {
    throw new RuleActionError(`${USAGE}; the arguments are not JSON`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new RuleActionError(`${USAGE}; the arguments must be a JSON object`);
  }
  return { kind: 'call', target, action, args: args as JsonObject };
}
