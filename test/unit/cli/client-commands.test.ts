// `nearmesh <command>` loads only the module of that command: the table that says which module adds which
// commands must be what each module registers, or a command would start with every module loaded (or, worse,
// be missing from help).
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { CLIENT_COMMANDS } from '../../../agent/cli/client-commands.js';

describe('the client command table', () => {
  it('names exactly the commands each module registers, each command once', async () => {
    for (const [names, load] of CLIENT_COMMANDS) {
      const program = new Command('nearmesh');
      (await load())(program);
      expect(program.commands.map((command) => command.name()).sort()).toEqual([...names].sort());
    }
    const all = CLIENT_COMMANDS.flatMap(([names]) => names);
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain('agent');
  });
});
