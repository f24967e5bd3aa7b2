// How a handler program's stdout becomes a value: programs written in any language (or a one-line
// shell script) should not have to speak JSON to return a plain word or number.
import type { JsonValue } from './handler.js';

/** JSON when the whole (trimmed) output parses as JSON, else the trimmed text. */
export function parseOutput(stdout: string): JsonValue {
  const text = stdout.trim();
  if (text === '') return '';
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** A decimal number as a number ("21.5", "-3", "1e3"); null for anything else ("0x10", "NaN", ""). */
export function parseNumber(text: string): number | null {
  if (!NUMBER.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
