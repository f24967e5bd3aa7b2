// The coordination sections of the config file ([coordination], [[actions]], [[sensors]], [[rules]]): their
// TOML keys and validation, and the resolved types the registry and the rule engine run from. agent/config
// assembles them.
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { argv, count, duration, NAME, TABLE } from '../core/config-fields.js';
import { parseRuleAction, type RuleAction } from './rule-action.js';
import { parseRuleExpression, type RuleExpression } from './rule-expression.js';
import { SYSTEM_SENSOR_NAMES } from './system-sensors.js';

/** Who may call an action: peer ids or names, and "group:NAME"; absent means every agent of the mesh. */
export type CallerFilter = readonly string[];

export type ActionConfig = {
  readonly name: string;
  readonly timeoutMs: number;
  readonly allow?: CallerFilter;
  /** Runs of this action at once. */
  readonly concurrency: number;
  /** Calls that wait for one of those runs to end; past it a call is answered "busy". */
  readonly queue: number;
} & (
  | { readonly kind: 'exec'; readonly exec: readonly string[] }
  | { readonly kind: 'gpio'; readonly chip: string; readonly line: number; readonly activeLow: boolean }
);

export type SensorConfig = {
  readonly name: string;
  /** Read this often and cached (and pushed to watchers); absent: read on demand only. */
  readonly everyMs?: number;
  readonly unit?: string;
} & (
  | { readonly kind: 'exec'; readonly exec: readonly string[] }
  | { readonly kind: 'gpio'; readonly chip: string; readonly line: number; readonly activeLow: boolean }
);

/** The `[coordination]` table: what calls may cost this agent, across every action and caller. */
export interface CoordinationLimits {
  /** Action runs at once, across every action (each exec or gpio run is a process). */
  readonly maxRunning: number;
  /** Calls waiting for a run, across every action. */
  readonly maxQueued: number;
  /** Calls waiting for their instant (`--in`, `--at`), from every caller together. */
  readonly maxScheduled: number;
  /** Calls waiting for their instant from one caller. */
  readonly maxScheduledPerCaller: number;
}

/** Runs at once of an action without `concurrency`: one for a GPIO line (a line has one state). */
export const DEFAULT_ACTION_CONCURRENCY = 4;
export const DEFAULT_GPIO_ACTION_CONCURRENCY = 1;
export const DEFAULT_ACTION_QUEUE = 16;

export const DEFAULT_COORDINATION_LIMITS: CoordinationLimits = {
  maxRunning: 16,
  maxQueued: 64,
  maxScheduled: 1024,
  maxScheduledPerCaller: 64,
};

export interface RuleConfig {
  readonly name: string;
  readonly when: RuleExpression;
  /** What it does when it fires (the `then` key). */
  readonly action: RuleAction;
  /** The condition must hold this long before the rule fires. */
  readonly debounceMs: number;
  /** How far back past its threshold a value must go before the rule can fire again. */
  readonly hysteresis: number;
  /** How often the sensors it reads are read (or pushed by their agents). */
  readonly everyMs: number;
}

const CAPABILITY_NAME = { message: 'expected a dotted name like "light.set" (letters, digits, "_", "-")' };
const capabilityName = z
  .string(CAPABILITY_NAME)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, CAPABILITY_NAME)
  .max(63, CAPABILITY_NAME);

export const gpioLine = z
  .object(
    {
      chip: z.string({ message: 'expected a chip like "gpiochip0"' }).min(1).default('gpiochip0'),
      line: z.number({ message: 'expected a line number' }).int().min(0).max(1023),
      active_low: z.boolean({ message: 'expected true or false' }).default(false),
    },
    { message: 'expected a table like { chip = "gpiochip0", line = 17 }' },
  )
  .strict();

type GpioLine = z.output<typeof gpioLine>;

const MAX_CAPABILITIES = 64;
/** Room left for the four built-in device sensors within what an announcement carries. */
const MAX_CONFIGURED_SENSORS = MAX_CAPABILITIES - SYSTEM_SENSOR_NAMES.length;

/** An action or sensor is backed by a program or by a GPIO line: one of the two. */
function exactlyOneSource(table: { exec?: unknown; gpio?: unknown }, ctx: z.RefinementCtx): void {
  if ((table.exec === undefined) === (table.gpio === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['exec'],
      message: 'expected exactly one of exec = [...] or gpio = {...}',
    });
  }
}

function uniqueNames(kind: string) {
  return (tables: { name: string }[], ctx: z.RefinementCtx): void => {
    const seen = new Set<string>();
    tables.forEach((table, index) => {
      if (seen.has(table.name))
        ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `expected each ${kind} name once` });
      seen.add(table.name);
    });
  };
}

export const actionTable = z
  .object(
    {
      name: capabilityName,
      exec: argv.optional(),
      gpio: gpioLine.optional(),
      timeout: duration.default('10s'),
      allow: z.array(z.string({ message: 'expected peer names, ids or "group:NAME"' }).min(1)).optional(),
      concurrency: count(1, 64).optional(),
      queue: count(0, 1024).default(DEFAULT_ACTION_QUEUE),
    },
    TABLE,
  )
  .strict()
  .superRefine(exactlyOneSource);

export const coordinationTable = z
  .object(
    {
      max_running: count(1, 1024).default(DEFAULT_COORDINATION_LIMITS.maxRunning),
      max_queued: count(0, 4096).default(DEFAULT_COORDINATION_LIMITS.maxQueued),
      max_scheduled: count(0, 16384).default(DEFAULT_COORDINATION_LIMITS.maxScheduled),
      max_scheduled_per_caller: count(0, 16384).default(DEFAULT_COORDINATION_LIMITS.maxScheduledPerCaller),
    },
    TABLE,
  )
  .strict();

export const sensorTable = z
  .object(
    {
      name: capabilityName,
      exec: argv.optional(),
      gpio: gpioLine.optional(),
      every: duration.optional(),
      unit: z.string({ message: 'expected a unit like "Cel" or "%"' }).min(1).max(63).optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine(exactlyOneSource);

export const ruleTable = z
  .object(
    {
      name: z.string(NAME).min(1, NAME).max(63, NAME).optional(),
      when: z.string({ message: 'expected a condition like "hall-pi/temp > 30"' }).transform((text, ctx) => {
        try {
          return parseRuleExpression(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
      // biome-ignore lint/suspicious/noThenProperty: the TOML key users write; the parsed table is never awaited
      then: z.string({ message: 'expected "call <target> <action> [json]"' }).transform((text, ctx) => {
        try {
          return parseRuleAction(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
      debounce: duration.default('0ms'),
      hysteresis: z
        .number({ message: 'expected a number (0 or more)' })
        .refine((value) => Number.isFinite(value) && value >= 0, { message: 'expected a number (0 or more)' })
        .default(0),
      every: duration.refine((ms) => ms >= 100, { message: 'expected at least 100ms' }).default('10s'),
    },
    TABLE,
  )
  .strict();

export const actionList = z
  .array(actionTable, { message: 'expected [[actions]] tables' })
  .max(MAX_CAPABILITIES, `expected at most ${MAX_CAPABILITIES} actions`)
  .superRefine(uniqueNames('action'))
  .default(() => []);

export const ruleList = z
  .array(ruleTable, { message: 'expected [[rules]] tables' })
  .max(MAX_CAPABILITIES, `expected at most ${MAX_CAPABILITIES} rules`)
  .default(() => []);

export const sensorList = z
  .array(sensorTable, { message: 'expected [[sensors]] tables' })
  // The built-in device sensors are announced too, within the same limit.
  .max(MAX_CONFIGURED_SENSORS, `expected at most ${MAX_CONFIGURED_SENSORS} sensors`)
  .superRefine(uniqueNames('sensor'))
  .default(() => []);

function source(table: { exec?: string[] | undefined; gpio?: GpioLine | undefined }) {
  if (table.gpio !== undefined) {
    const { chip, line, active_low } = table.gpio;
    return { kind: 'gpio' as const, chip, line, activeLow: active_low };
  }
  return { kind: 'exec' as const, exec: table.exec ?? [] };
}

export function resolveAction(action: z.output<typeof actionTable>): ActionConfig {
  const defaultConcurrency =
    action.gpio === undefined ? DEFAULT_ACTION_CONCURRENCY : DEFAULT_GPIO_ACTION_CONCURRENCY;
  return {
    name: action.name,
    timeoutMs: action.timeout,
    ...(action.allow !== undefined && { allow: [...new Set(action.allow)] }),
    concurrency: action.concurrency ?? defaultConcurrency,
    queue: action.queue,
    ...source(action),
  };
}

export function resolveCoordination(table: z.output<typeof coordinationTable>): CoordinationLimits {
  return {
    maxRunning: table.max_running,
    maxQueued: table.max_queued,
    maxScheduled: table.max_scheduled,
    maxScheduledPerCaller: table.max_scheduled_per_caller,
  };
}

export function resolveSensor(sensor: z.output<typeof sensorTable>): SensorConfig {
  return {
    name: sensor.name,
    ...(sensor.every !== undefined && { everyMs: sensor.every }),
    ...(sensor.unit !== undefined && { unit: sensor.unit }),
    ...source(sensor),
  };
}

/** `index` names an unnamed rule by its place in the file ("rule 2"). */
export function resolveRule(rule: z.output<typeof ruleTable>, index: number): RuleConfig {
  return {
    name: rule.name ?? `rule ${index + 1}`,
    when: rule.when,
    action: rule.then,
    debounceMs: rule.debounce,
    hysteresis: rule.hysteresis,
    everyMs: rule.every,
  };
}
