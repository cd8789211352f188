/** `runbook help [COMMAND|TOPIC]` and `runbook completion SHELL`. */
import type { Command } from 'commander';
import { UserError } from '../common.ts';
import { completionScript } from './completion.ts';
import { HELP_TOPICS } from './help-topics.ts';
import type { Io } from './output.ts';

export function registerHelpCommands(program: Command, io: Io): void {
  program.helpCommand(false);
  program
    .command('help')
    .description('help on a command (runbook help run) or a topic: ' + Object.keys(HELP_TOPICS).join(', '))
    .argument('[topic]', 'a command or a topic')
    .action((topic: string | undefined) => {
      if (!topic) {
        io.out(program.helpInformation());
        io.out(`Topics (runbook help TOPIC):\n${Object.entries(HELP_TOPICS).map(([k, t]) => `  ${k.padEnd(12)} ${t.summary}`).join('\n')}`);
        return;
      }
      const cmd = program.commands.find((c) => c.name() === topic || c.aliases().includes(topic));
      if (cmd) return io.out(cmd.helpInformation());
      const t = Object.hasOwn(HELP_TOPICS, topic) ? HELP_TOPICS[topic] : undefined;
      if (t) return io.out(t.text);
      throw new UserError(`no command or help topic "${topic}" (topics: ${Object.keys(HELP_TOPICS).join(', ')}; commands: ${program.commands.map((c) => c.name()).join(', ')})`);
    });
  program
    .command('completion')
    .description('print a shell completion script: bash, zsh or fish (runbook help completion)')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => {
      const { listRunbooks } = await import('../authoring.ts');
      io.out(completionScript(shell, program, listRunbooks(io.env).map((r) => r.name)));
    });
}
