// `statistics`: rtpengine 10.5's reply shape for the figures we keep. Parts we have no data for
// (packet rates, `intervalstatistics`, `mos`, kernel counters) are left out rather than faked.
import type { NgDict } from '../codec.js';
import type { CommandContext, CommandHandler } from './context.js';

/**
 * rtpengine's per-proxy counter prefixes (`<prefix>count`, `<prefix>duration`), in its order.
 * Every command is listed, ours or not, so a monitoring script sees rtpengine's key set.
 */
const ABBREV: readonly [command: string, prefix: string][] = [
  ['ping', 'ping'], ['offer', 'offer'], ['answer', 'answer'], ['delete', 'delete'], ['query', 'query'], ['list', 'list'],
  ['start recording', 'startrec'], ['stop recording', 'stoprec'], ['start forwarding', 'startfwd'],
  ['stop forwarding', 'stopfwd'], ['block DTMF', 'blkdtmf'], ['unblock DTMF', 'unblkdtmf'], ['block media', 'blkmedia'],
  ['unblock media', 'unblkmedia'], ['play media', 'playmedia'], ['stop media', 'stopmedia'], ['play DTMF', 'playdtmf'],
  ['statistics', 'stats'], ['silence media', 'slnmedia'], ['unsilence media', 'unslnmedia'], ['publish', 'pub'],
  ['subscribe request', 'subreq'], ['subscribe answer', 'subans'], ['unsubscribe', 'unsub'],
];

/** rtpengine prints durations as seconds with six decimals, in a string. */
const seconds = (us: number): string => (us / 1e6).toFixed(6);

function controlStatistics(ctx: CommandContext): NgDict {
  const proxies = [...ctx.stats.byProxy].map(([proxy, s]) => {
    const out: NgDict = { proxy };
    for (const [cmd, prefix] of ABBREV) {
      const c = s.commands?.get(cmd);
      out[`${prefix}count`] = c?.count ?? 0;
      out[`${prefix}duration`] = seconds(c?.totalUs ?? 0);
    }
    out.errorcount = s.errors;
    return out;
  });
  const out: NgDict = { proxies };
  for (const [cmd, prefix] of ABBREV) out[`total${prefix}count`] = ctx.stats.byCommand.get(cmd)?.count ?? 0;
  return out;
}

export const statistics: CommandHandler = async (_p, ctx) => {
  await ctx.core.refresh();
  const t = ctx.core.totals();
  return {
    statistics: {
      currentstatistics: { sessionsown: t.current - t.deleting, sessionsforeign: 0, sessionstotal: t.current, transcodedmedia: 0 },
      totalstatistics: {
        uptime: String(Math.floor((ctx.nowMs() - ctx.startedMs) / 1000)), // a string in rtpengine too
        managedsessions: t.callsCreated,
        timeoutsessions: t.callsEnded['timeout'] ?? 0,
        silenttimeoutsessions: t.callsEnded['silent-timeout'] ?? 0,
        finaltimeoutsessions: t.callsEnded['final-timeout'] ?? 0,
        offertimeoutsessions: t.callsEnded['offer-timeout'] ?? 0,
        regularterminatedsessions: t.callsEnded['delete'] ?? 0,
      },
      controlstatistics: controlStatistics(ctx),
      interfaces: ctx.ports().map((p): NgDict => {
        // rtpengine counts single ports, the pool counts RTP/RTCP pairs.
        const total = p.total * 2, used = (p.total - p.free) * 2;
        const ports: NgDict = {};
        if (p.min !== undefined && p.max !== undefined) { ports.min = p.min; ports.max = p.max; }
        Object.assign(ports, { used, used_pct: total ? (100 * used / total).toFixed(2) : '0.00', free: total - used, totals: total });
        const out: NgDict = p.name === undefined ? {} : { name: p.name };
        return Object.assign(out, { address: p.address, ports });
      }),
      transcoders: [], // we never transcode
    },
    result: 'ok',
  };
};
