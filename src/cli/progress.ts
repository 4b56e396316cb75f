import cliProgress from 'cli-progress';

/** Reports progress in pairs scored; a no-op where it cannot draw. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** Seconds between progress lines when stderr is not a terminal: a log, not a bar. */
export const LOG_INTERVAL_SECONDS = 60;

/**
 * Reports progress on stderr: a bar with pairs done, rate and time left when
 * stderr is a terminal, else one line every {@link LOG_INTERVAL_SECONDS}, so
 * that nightly logs show a long run moving without filling up.
 */
export function createProgress(total: number, enabled: boolean): Progress {
  if (!enabled || total === 0) return { update() {}, stop() {} };
  if (!process.stderr.isTTY) return createLogProgress(total);
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

function createLogProgress(total: number): Progress {
  const started = performance.now();
  let lastLine = started;
  return {
    update(done) {
      const now = performance.now();
      if (now - lastLine < LOG_INTERVAL_SECONDS * 1000 || done >= total) return;
      lastLine = now;
      const seconds = (now - started) / 1000;
      const rate = done / seconds;
      const left = rate > 0 ? Math.round((total - done) / rate) : 0;
      const percent = ((100 * done) / total).toFixed(1);
      process.stderr.write(
        `attnscore: scored ${compact(done)} of ${compact(total)} pairs (${percent}%), ` +
          `${compact(rate)} pairs/s, about ${left} s left\n`,
      );
    },
    stop() {},
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
