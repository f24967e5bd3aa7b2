// `[[resolvers]]`: programs that tell the agent where peers are (transports/exec-resolver.ts), each with a
// name of its own for logs and `nearmesh resolvers`.
import { basename } from 'node:path';
import { z } from 'zod/v3';
import { argv, count, TABLE } from '../core/config-fields.js';
import { BUILT_IN_RESOLVERS, DEFAULT_MAX_CANDIDATES } from '../links/resolver-book.js';

/** More than any site needs from one resolver; each candidate costs a dial target. */
const MAX_CANDIDATES_LIMIT = 4096;
const MAX_RESOLVERS = 8;
const RESOLVER_NAME = { message: 'expected a name of 1..32 of a-z, 0-9, "_" and "-"' };

export interface ExecResolverConfig {
  readonly name: string;
  readonly exec: readonly string[];
  readonly maxCandidates: number;
}

export const resolverTable = z
  .object(
    {
      exec: argv,
      name: z
        .string(RESOLVER_NAME)
        .regex(/^[a-z0-9_-]{1,32}$/, RESOLVER_NAME)
        .optional(),
      max_candidates: count(1, MAX_CANDIDATES_LIMIT).default(DEFAULT_MAX_CANDIDATES),
    },
    TABLE,
  )
  .strict();

/** "/usr/local/bin/dhcp-peers.sh" is named "dhcp-peers"; a table's own `name` wins. */
function defaultName(program: string): string {
  const stem = basename(program).replace(/\.[^.]*$/, '');
  const name = stem
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .slice(0, 32);
  return name === '' ? 'exec' : name;
}

export const resolverList = z
  .array(resolverTable, { message: 'expected [[resolvers]] tables' })
  .max(MAX_RESOLVERS, `expected at most ${MAX_RESOLVERS} resolvers`)
  .default(() => [])
  .transform((tables, ctx): ExecResolverConfig[] => {
    const seen = new Set<string>();
    return tables.map((table, index) => {
      const name = table.name ?? defaultName(table.exec[0] as string);
      if ((BUILT_IN_RESOLVERS as readonly string[]).includes(name))
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `"${name}" is a built-in resolver's name`,
        });
      else if (seen.has(name))
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `another resolver is named "${name}": give each a name = "..."`,
        });
      seen.add(name);
      return { name, exec: table.exec, maxCandidates: table.max_candidates };
    });
  });
