// zod fields that several config sections share (agent/config assembles the sections; coordination and the
// gateway own theirs), so every table says the same words about the same mistake.
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { parseDuration } from './duration.js';
import { checkHostPort, type HostPort } from './host-port.js';

export const TABLE = { message: 'expected a table' };

export const NAME = { message: 'expected a string of 1..63 characters' };

/** zod/v3 puts a schema's `message` on its type errors only; a union's own failure (invalid_union) needs a map. */
export function unionError(message: string): { errorMap: z.ZodErrorMap } {
  return { errorMap: () => ({ message }) };
}

export const pathString = z
  .string({ message: 'expected a path' })
  .min(1, { message: 'expected a non-empty path' })
  .refine((text) => !text.includes('\0'), { message: 'expected a path without NUL characters' });

const POSITIVE_INTEGER = 'expected a positive integer';

/**
 * zod 4's verdicts, kept: v3's z.number() lets ±Infinity through and its int() takes integers beyond 2^53
 * (a baud of 1e20 would load). A fraction is one problem; a huge negative integer is two, as before.
 */
export const positiveInteger = z.number({ message: POSITIVE_INTEGER }).superRefine((value, ctx) => {
  if (!Number.isInteger(value)) {
    ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
    return;
  }
  if (!Number.isSafeInteger(value)) ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
  if (value <= 0) ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
});

/** "5s", "500ms", "1h30m" to milliseconds (agent/core/duration.ts). */
export const duration = z
  .string({ message: 'expected a duration like "5s" or "500ms"' })
  .transform((text, ctx) => {
    try {
      return parseDuration(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

/** A program and its arguments, run without a shell (actions, sensors, resolvers). */
export const argv = z
  .array(z.string({ message: 'expected strings' }).min(1, { message: 'expected non-empty strings' }), {
    message: 'expected ["/path/to/program", "arg", ...]',
  })
  .min(1, { message: 'expected ["/path/to/program", "arg", ...]' });

/** A whole number within min..max. */
export function count(min: number, max: number) {
  const message = `expected a whole number within ${min}..${max}`;
  return z.number({ message }).int(message).min(min, message).max(max, message);
}

/** A listener's address, `"host:port"` (port 0: any free one), or `false` for no listener. */
export const listenOrOff = z
  .union([z.literal(false), z.string()], unionError('expected "host:port" or false'))
  .transform((value, ctx): HostPort | false => {
    if (value === false) return false;
    const result = checkHostPort(value, { allowPortZero: true });
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected });
    return z.NEVER;
  });
