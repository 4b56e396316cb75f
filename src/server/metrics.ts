/** Prometheus metrics of one server, in a registry of its own so that servers do not share counts. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The metrics a server updates. */
export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  /** User x content pairs scored by the score endpoints, and pairs by `/v1/pairs`. */
  readonly pairs: Counter<'endpoint'>;
}

/**
 * Creates the metrics. `queueDepth` and `running` are read at each scrape,
 * so the gauges need no updates from the request path.
 */
export function createMetrics(queueDepth: () => number, running: () => number): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'attnscore_' });
  const requests = new Counter({
    name: 'attnscore_http_requests_total',
    help: 'HTTP requests by method, route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'attnscore_http_request_duration_seconds',
    help: 'HTTP request latency in seconds, from arrival to the last byte sent',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const pairs = new Counter({
    name: 'attnscore_pairs_scored_total',
    help: 'User x content pairs scored, by endpoint',
    labelNames: ['endpoint'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'attnscore_queue_depth',
    help: 'Scoring requests waiting for a place',
    registers: [registry],
    collect() {
      this.set(queueDepth());
    },
  });
  new Gauge({
    name: 'attnscore_requests_running',
    help: 'Scoring requests running',
    registers: [registry],
    collect() {
      this.set(running());
    },
  });
  return { registry, requests, duration, pairs };
}
