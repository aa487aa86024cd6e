/** main.ts loads one command group per command line: each group must list exactly what its module registers. */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMAND_GROUPS, groupsFor } from '../../src/cli/commandGroups.js';

describe('command groups', () => {
  it('list exactly the commands their module registers, each command in one group', async () => {
    const all: string[] = [];
    for (const group of COMMAND_GROUPS) {
      const program = new Command().enablePositionalOptions();
      (await group.load())(program);
      expect(program.commands.map((c) => c.name()).sort()).toEqual([...group.commands].sort());
      all.push(...group.commands);
    }
    expect(new Set(all).size).toBe(all.length);
  });

  it('picks the group of the command named, none for --version, all for help or an unknown word', () => {
    expect(groupsFor(['run', 'check', '--project', 'server'])).toEqual([COMMAND_GROUPS[1]]);
    expect(groupsFor(['admin', 'create-token'])).toEqual([COMMAND_GROUPS[0]]);
    expect(groupsFor(['start', '-d'])).toEqual([COMMAND_GROUPS[2]]);
    for (const name of ['schedule', 'channel']) expect(groupsFor([name, 'list']).map((g) => g.commands)).toEqual([[name]]);
    expect(groupsFor(['--version'])).toEqual([]);
    expect(groupsFor(['-V'])).toEqual([]);
    for (const args of [[], ['--help'], ['help', 'run'], ['rnu']]) expect(groupsFor(args)).toBe(COMMAND_GROUPS);
  });
});
