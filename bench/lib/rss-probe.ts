/**
 * Preloaded into a benchmarked runner (`node --import bench/lib/rss-probe.ts …`): on exit, writes the process's
 * peak resident set (KiB, getrusage ru_maxrss) to $BENCH_RSS_FILE.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, `${process.resourceUsage().maxRSS}\n`);
    } catch {
      // a benchmark detail must never change how the runner exits
    }
  });
}
