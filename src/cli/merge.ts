/** The `attnscore merge` command: join shard outputs into the output of one whole run. */
import type { Command } from 'commander';

import { mergeShardOutputs } from '../run/merge.js';

interface MergeCommandOptions {
  out: string;
  quiet: boolean;
}

/**
 * Adds `merge` to the program. Bad input raises an `AttnScoreError`, which `main` reports on
 * stderr with exit status 2.
 */
export function registerMergeCommand(program: Command): void {
  program
    .command('merge')
    .description(
      'Join the outputs of attnscore score --shard I/N runs (each with its .manifest.json) ' +
        'into the file that one run over every user writes. The shards may be given in any ' +
        'order. Shards of different inputs or parameters, and duplicate or missing shards, ' +
        'are rejected.',
    )
    .argument(
      '<shard-outputs...>',
      'the output file of every shard, such as scores.shard-*-of-00008.jsonl',
    )
    .requiredOption(
      '--out <file>',
      'merged output, written to a temporary file and renamed when complete; - for stdout',
    )
    .option('--quiet', 'do not print the summary line', false)
    .action(async (shardOutputs: string[], options: MergeCommandOptions) => {
      const started = performance.now();
      const summary = await mergeShardOutputs(options.out, shardOutputs);
      if (options.quiet) return;
      const seconds = (performance.now() - started) / 1000;
      const where = options.out === '-' ? 'stdout' : options.out;
      process.stderr.write(
        `merged ${summary.shards} shards (${summary.users} users, ${summary.output.bytes} bytes ` +
          `of ${summary.format}) into ${where} in ${seconds.toFixed(2)} s\n`,
      );
    });
}
