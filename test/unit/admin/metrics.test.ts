// The NG latency histogram renders as prom-client's own Histogram with a `command` label would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import client from 'prom-client';
import { LatencyHistogram } from '../../../admin/metrics.js';

const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

test('LatencyHistogram: the same text and JSON as a prom-client Histogram fed the same observations', async () => {
  const theirs = new client.Registry(), ours = new client.Registry();
  const h = new client.Histogram({ name: 'x_seconds', help: 'help', registers: [theirs], labelNames: ['command'], buckets: BOUNDS });
  const l = new LatencyHistogram('x_seconds', 'help', BOUNDS);
  ours.registerMetric(l as unknown as client.Metric);
  // On a bound (counted in it), between bounds, past the last one, several commands.
  const seen: [string, number][] = [['offer', 0.0003], ['answer', 0.00005], ['offer', 0.7], ['offer', 0.0001], ['delete', 0.5], ['answer', 0.01], ['ping', 0]];
  for (const [command, s] of seen) { h.observe({ command }, s); l.observe(command, s); }
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^x_seconds_bucket\{le="0.0001",command="offer"\} 1$/m);
  assert.match(text, /^x_seconds_bucket\{le="\+Inf",command="offer"\} 3$/m);
  assert.match(text, /^x_seconds_count\{command="answer"\} 2$/m);
  // As JSON shows it (prom-client leaves `exemplar: undefined` on sums and counts).
  const json = async (r: client.Registry): Promise<unknown> => JSON.parse(JSON.stringify(await r.getMetricsAsJSON()));
  assert.deepEqual(await json(ours), await json(theirs));
  ours.resetMetrics(); theirs.resetMetrics();
  assert.equal(await ours.metrics(), await theirs.metrics(), 'and after a reset');
});
