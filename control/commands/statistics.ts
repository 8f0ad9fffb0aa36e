// `statistics`: current and total figures, per-command control statistics, port usage.
import type { CommandHandler } from './context.js';

export const statistics: CommandHandler = (_p, ctx) => {
  const t = ctx.table.totals();
  const ended = Object.values(t.callsEnded).reduce((a, b) => a + b, 0);
  const proxies = [...ctx.stats.byProxy].map(([proxy, s]) => ({ proxy, ...s }));
  const commands = Object.fromEntries([...ctx.stats.byCommand].map(([cmd, s]) => [cmd, {
    count: s.count, errors: s.errors, 'average latency (µs)': s.count ? Math.round(s.totalUs / s.count) : 0, 'max latency (µs)': s.maxUs,
  }]));
  return {
    statistics: {
      currentstatistics: { sessionsown: t.current - t.deleting, sessionsforeign: 0, sessionstotal: t.current, transcodedmedia: 0 },
      totalstatistics: {
        uptime: Math.floor((ctx.nowMs() - ctx.startedMs) / 1000),
        managedsessions: t.callsCreated,
        closedsessions: ended,
        timeoutsessions: t.callsEnded['timeout'] ?? 0,
        silenttimeoutsessions: t.callsEnded['silent-timeout'] ?? 0,
        finaltimeoutsessions: t.callsEnded['final-timeout'] ?? 0,
        offertimeoutsessions: t.callsEnded['offer-timeout'] ?? 0,
        regularterminatedsessions: t.callsEnded['delete'] ?? 0,
      },
      controlstatistics: { proxies, commands },
      interfaces: ctx.ports().map((p) => ({ address: p.address, ports: { free: p.free, used: p.total - p.free, total: p.total } })),
    },
    result: 'ok',
  };
};
