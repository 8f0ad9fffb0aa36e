// Prometheus metrics. Figures are read from the session core when scraped (no per-packet work);
// NG latency is observed per command through `observeNg`.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import client from 'prom-client';
import type { PortUsage, SessionCore } from '../daemon/session/core.js';
import type { Instance } from '../daemon/instance.js';

export interface MetricsSources {
  table: SessionCore;
  instance: Instance;
  ports(): PortUsage[];
  /** Per command: count and errors (the NG server's own counters). */
  commands(): Map<string, { count: number; errors: number }>;
  /** Sums over all live streams. */
  media(): { rtp: { packets: number; bytes: number; errors: number }; rtcp: { packets: number; bytes: number; errors: number }; streams: number };
  /** NG commands handed straight to call threads by the native reader (absent: not in that mode). */
  ngHandover?(): { routed: number; dropped: number };
  /** The NG reply cache (all of them with call threads): replies kept, their bytes, slab memory set aside. */
  ngReplyCache(): { entries: number; bytes: number; reserveBytes: number };
}

const STATES = ['active', 'draining', 'drained', 'disabled'] as const;
const ELD_RESOLUTION_MS = 1;
const NG_LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

interface HistogramValue { labels: Record<string, string | number>; value: number; metricName: string; exemplar?: null }

/**
 * A histogram by command, observed once per NG command, that a prom-client Registry renders as it
 * renders a prom-client Histogram with a `command` label (same lines, same order). prom-client's
 * observe() validates the labels object and hashes it on every call: ~0.8 us a command, 1.7 % of
 * the main thread under ngload (tenth session's profile, media in a worker, where that thread is
 * the bottleneck). Here a command's counts are a Map lookup and a bucket scan; the values for the
 * registry are built only when scraped.
 */
export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byCommand = new Map<string, { counts: Float64Array; sum: number; count: number }>();

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  observe(command: string, seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    let h = this.byCommand.get(command);
    if (h === undefined) {
      h = { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      this.byCommand.set(command, h);
    }
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    if (i < b.length) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** prom-client's MetricObjectWithValues: cumulative buckets, then sum and count, per command. */
  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    const values: HistogramValue[] = [];
    for (const [command, h] of this.byCommand) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += h.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, command }, value: acc, metricName: `${this.name}_bucket`, exemplar: null });
      }
      values.push({ labels: { le: '+Inf', command }, value: h.count, metricName: `${this.name}_bucket`, exemplar: null });
      values.push({ labels: { command }, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { command }, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void { this.byCommand.clear(); }
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly ngLatency: LatencyHistogram;

  constructor(private readonly src: MetricsSources) {
    const r = this.registry;
    client.collectDefaultMetrics({ register: r, prefix: 'rtprelay_process_' });
    // prom-client's eventloop_lag figures are whole timer intervals at a 10 ms resolution, so an
    // idle process shows ~10 ms. This one samples every millisecond and reports how late each
    // sample came (the interval less the millisecond), since the previous scrape.
    const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    eld.enable();
    new client.Gauge({ name: 'rtprelay_eventloop_delay_seconds', help: 'Main-thread event-loop delay since the previous scrape (1 ms sampling)',
      registers: [r], labelNames: ['quantile'],
      collect() {
        const late = (ns: number): number => Math.max(0, ns / 1e9 - ELD_RESOLUTION_MS / 1000);
        if (eld.count > 0) {
          this.set({ quantile: '0.5' }, late(eld.percentile(50)));
          this.set({ quantile: '0.99' }, late(eld.percentile(99)));
          this.set({ quantile: '1' }, late(eld.max));
        }
        eld.reset();
      } });
    new client.Gauge({ name: 'rtprelay_calls', help: 'Calls in the table (live and awaiting delayed delete)', registers: [r], labelNames: ['state'],
      collect() { const t = src.table.totals(); this.set({ state: 'live' }, t.current - t.deleting); this.set({ state: 'deleting' }, t.deleting); } });
    new client.Counter({ name: 'rtprelay_calls_created_total', help: 'Calls created', registers: [r],
      collect() { this.reset(); this.inc(src.table.totals().callsCreated); } });
    new client.Counter({ name: 'rtprelay_calls_ended_total', help: 'Calls ended, by reason', registers: [r], labelNames: ['reason'],
      collect() { this.reset(); for (const [reason, n] of Object.entries(src.table.totals().callsEnded)) this.inc({ reason }, n); } });
    new client.Gauge({ name: 'rtprelay_ports_free', help: 'Free media port pairs per local address', registers: [r], labelNames: ['address'],
      collect() { for (const p of src.ports()) this.set({ address: p.address }, p.free); } });
    new client.Gauge({ name: 'rtprelay_ports_total', help: 'Media port pairs per local address', registers: [r], labelNames: ['address'],
      collect() { for (const p of src.ports()) this.set({ address: p.address }, p.total); } });
    // Parked sockets (--socket-park, native socket layer only): absent with node:dgram.
    new client.Gauge({ name: 'rtprelay_sockets_parked', help: 'Sockets of freed media ports kept bound for reuse (--socket-park), per local address', registers: [r], labelNames: ['address'],
      collect() { this.reset(); for (const p of src.ports()) if (p.parked !== undefined) this.set({ address: p.address }, p.parked); } });
    new client.Counter({ name: 'rtprelay_sockets_reused_total', help: 'Media port binds that took a parked socket instead of a new one, per local address', registers: [r], labelNames: ['address'],
      collect() { this.reset(); for (const p of src.ports()) if (p.reused !== undefined) this.inc({ address: p.address }, p.reused); } });
    new client.Counter({ name: 'rtprelay_parked_dropped_total', help: 'Datagrams that reached a parked socket (a freed media port) and were dropped, per local address', registers: [r], labelNames: ['address'],
      collect() { this.reset(); for (const p of src.ports()) if (p.parkedDrops !== undefined) this.inc({ address: p.address }, p.parkedDrops); } });
    new client.Gauge({ name: 'rtprelay_streams', help: 'Media streams (RTP and RTCP sockets) of live calls', registers: [r],
      collect() { this.set(src.media().streams); } });
    for (const [name, help, key] of [
      ['rtprelay_packets_total', 'Packets received on live streams', 'packets'],
      ['rtprelay_bytes_total', 'Bytes received on live streams', 'bytes'],
      ['rtprelay_errors_total', 'Malformed or undeliverable packets on live streams', 'errors'],
    ] as const) {
      new client.Counter({ name, help, registers: [r], labelNames: ['kind'],
        collect() { const m = src.media(); this.reset(); this.inc({ kind: 'rtp' }, m.rtp[key]); this.inc({ kind: 'rtcp' }, m.rtcp[key]); } });
    }
    new client.Counter({ name: 'rtprelay_ng_commands_total', help: 'NG commands by command and result', registers: [r], labelNames: ['command', 'result'],
      collect() {
        this.reset();
        for (const [command, c] of src.commands()) { this.inc({ command, result: 'ok' }, c.count - c.errors); this.inc({ command, result: 'error' }, c.errors); }
      } });
    const handover = src.ngHandover;
    if (handover) {
      new client.Counter({ name: 'rtprelay_ng_handed_over_total', help: 'NG commands handed from the UDP reader straight to their call thread (dropped: that thread\'s queue was full)',
        registers: [r], labelNames: ['result'],
        collect() { const h = handover(); this.reset(); this.inc({ result: 'routed' }, h.routed); this.inc({ result: 'dropped' }, h.dropped); } });
    }
    new client.Gauge({ name: 'rtprelay_ng_reply_cache_entries', help: 'NG replies kept for retransmitted commands (30-60 s, less under a load past the byte budget)', registers: [r],
      collect() { this.set(src.ngReplyCache().entries); } });
    new client.Gauge({ name: 'rtprelay_ng_reply_cache_bytes', help: 'Bytes of the NG requests and replies kept for retransmissions', registers: [r],
      collect() { this.set(src.ngReplyCache().bytes); } });
    new client.Gauge({ name: 'rtprelay_ng_reply_cache_reserve_bytes', help: 'Memory set aside at the start for the NG reply cache (virtual; resident only where replies filled it)', registers: [r],
      collect() { this.set(src.ngReplyCache().reserveBytes); } });
    this.ngLatency = new LatencyHistogram('rtprelay_ng_latency_seconds', 'NG command processing time', NG_LATENCY_BUCKETS);
    r.registerMetric(this.ngLatency as unknown as client.Metric);
    new client.Gauge({ name: 'rtprelay_instance_state', help: 'This instance\'s state (1 for the current one)', registers: [r], labelNames: ['state'],
      collect() { for (const s of STATES) this.set({ state: s }, src.instance.state === s ? 1 : 0); } });
  }

  observeNg(command: string, seconds: number): void {
    this.ngLatency.observe(command, seconds);
  }

  get contentType(): string { return this.registry.contentType; }

  async render(): Promise<string> {
    await this.src.table.refresh();
    return this.registry.metrics();
  }
}
