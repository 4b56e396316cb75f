import cliProgress from 'cli-progress';

/** Reports progress in pairs scored; a no-op where it cannot draw. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr with pairs done, rate and time left, drawn only
 * when stderr is a terminal so that logs and pipes stay clean.
 */
export function createProgress(total: number, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const started = performance.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'scoring [{bar}] {percentage}% | {done}/{all} pairs | {rate} pairs/s | {eta_formatted} left',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { done: compact(0), all: compact(total), rate: '-' });
  return {
    update(done) {
      const seconds = (performance.now() - started) / 1000;
      bar.update(done, { done: compact(done), rate: seconds > 0 ? compact(done / seconds) : '-' });
    },
    stop() {
      bar.stop();
    },
  };
}

/** Formats a count with a metric suffix: 1234567 -> "1.23M". */
export function compact(value: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [scale, suffix] of units) {
    if (value >= scale) return `${(value / scale).toPrecision(3)}${suffix}`;
  }
  return String(Math.round(value));
}
