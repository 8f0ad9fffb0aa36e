// rtprelay-ctl: the operator's command line, modelled on rtpengine-ctl. A client of the
// daemon's HTTP admin API only; it never touches the database or the daemon's state itself.
import { loadConfig } from '../daemon/config/load.js';

const USAGE = `Usage: rtprelay-ctl [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]

Commands:
  list                 live calls
  show CALL-ID         one call: legs, media, streams and counters
  totals               call counts, instance state
  terminate CALL-ID    end one call now
  terminate all        end every call now
  drain                stop taking new calls; running calls go on to their end
  enable               take new calls again
  disable              take no new calls
  instances            the instances table (database)
  add URL [--setid N] [--weight N]   add an instance row (e.g. udp:10.0.0.2:2223)
  remove URL           remove an instance row
  recordings [CALL-ID] recording files (database): id, call, kind, size, path; download with
                       GET /api/recordings/ID

The daemon is reached at --url, else $RTPRELAY_URL, else the --listen-http of the same
configuration (config file, RTPRELAY_* environment), else http://127.0.0.1:2225.`;

export interface CliIo { out: (s: string) => void; err: (s: string) => void }

function defaultUrl(env: NodeJS.ProcessEnv): string {
  if (env.RTPRELAY_URL) return env.RTPRELAY_URL;
  try {
    const cfg = loadConfig([], env);
    if (cfg !== 'help' && cfg !== 'version' && cfg.listenHttp[0]) {
      const { address, port } = cfg.listenHttp[0];
      const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '[::1]' : address.includes(':') ? `[${address}]` : address;
      return `http://${host}:${port}`;
    }
  } catch { /* no usable config: fall back */ }
  return 'http://127.0.0.1:2225';
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cell = (v: unknown): string => (v === undefined || v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  let url: string | null = null, token = env.RTPRELAY_TOKEN ?? null, asJson = false;
  const args: string[] = [];
  const opts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [k, v] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const next = (): string => v ?? argv[++i] ?? '';
    if (k === '--url') url = next();
    else if (k === '--token') token = next();
    else if (k === '--json') asJson = true;
    else if (k === '--setid' || k === '--weight') opts[k.slice(2)] = next();
    else if (k === '--help' || k === '-h') { io.out(USAGE); return 0; }
    else args.push(a);
  }
  const base = (url ?? defaultUrl(env)).replace(/\/$/, '');
  const [cmd, arg] = args;
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; data: any }> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(5000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CliError(`cannot reach rtprelay at ${base}: ${cause}`);
    }
    const text = await res.text();
    let data: any = text;
    try { data = JSON.parse(text); } catch { /* not JSON */ }
    if (res.status >= 400) throw new CliError(`${method} ${path}: ${res.status} ${data?.error ?? text}`);
    return { status: res.status, data };
  };
  const print = (data: unknown, human: () => string): void => io.out(asJson ? JSON.stringify(data, null, 2) : human());
  try {
    switch (cmd) {
      case 'list': {
        const { data } = await call('GET', '/api/calls');
        print(data, () => (data.calls.length ? table(data.calls.map((c: any) => ({
          'call-id': c.callId, tags: c.tags.join(','), age_s: Math.round((Date.now() - c.createdMs) / 1000),
          rtp_packets: c.totals.rtp.packets, rtcp_packets: c.totals.rtcp.packets,
        })), ['call-id', 'tags', 'age_s', 'rtp_packets', 'rtcp_packets']) : 'no calls'));
        return 0;
      }
      case 'show': {
        if (!arg) throw new CliError('show needs a call-id');
        const { data } = await call('GET', `/api/calls/${encodeURIComponent(arg)}`);
        print(data, () => {
          const rows: Record<string, unknown>[] = [];
          for (const p of data.participants) for (const m of p.medias) for (const s of m.streams) {
            rows.push({ tag: p.tag || '(untagged)', media: `${m.index} ${m.type}`, stream: s.kind,
              local: s.local ? `${s.local.address}:${s.local.port}` : '-', peer: s.endpoint ? `${s.endpoint.address}:${s.endpoint.port}` : '-',
              packets: s.stats.packets, bytes: s.stats.bytes, errors: s.stats.errors,
              lost: s.quality?.lost ?? '', jitter_ms: s.quality ? s.quality.jitterMs.toFixed(1) : '', mos: s.quality?.mos ?? '' });
          }
          return `call ${data.callId}\n` + table(rows, ['tag', 'media', 'stream', 'local', 'peer', 'packets', 'bytes', 'errors', 'lost', 'jitter_ms', 'mos']);
        });
        return 0;
      }
      case 'recordings': {
        const { data } = await call('GET', arg ? `/api/calls/${encodeURIComponent(arg)}/recordings` : '/api/recordings');
        print(data, () => (data.recordings.length ? table(data.recordings.map((r: any) => ({
          id: r.id ?? '-', 'call-id': r.call_id, kind: r.kind, tag: r.tag ?? '', bytes: r.bytes,
          started: new Date(r.started_ms).toISOString(), path: r.path,
        })), ['id', 'call-id', 'kind', 'tag', 'bytes', 'started', 'path']) : 'no recordings')
          + (data.failures ? `\n${data.failures} recording(s) stopped on a file error since start` : ''));
        return 0;
      }
      case 'totals': {
        const { data } = await call('GET', '/api/totals');
        delete data.history;
        print(data, () => Object.entries(data).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n'));
        return 0;
      }
      case 'terminate': {
        if (!arg) throw new CliError('terminate needs a call-id or "all"');
        const { data } = await call('POST', arg === 'all' ? '/api/terminate-all' : `/api/calls/${encodeURIComponent(arg)}/terminate`);
        print(data, () => `terminated ${data.terminated.length} call(s)`);
        return 0;
      }
      case 'drain': case 'enable': case 'disable': {
        const { data } = await call('POST', `/api/${cmd}`);
        print(data, () => `instance is ${data.state}`);
        return 0;
      }
      case 'instances': {
        const { data } = await call('GET', '/api/instances');
        print(data, () => (data.instances.length ? table(data.instances, Object.keys(data.instances[0])) : 'no instances (is a database configured?)'));
        return 0;
      }
      case 'add': case 'remove': {
        if (!arg) throw new CliError(`${cmd} needs an instance URL such as udp:10.0.0.2:2223`);
        const { data } = cmd === 'add'
          ? await call('POST', '/api/instances', { url: arg, setid: Number(opts.setid ?? 0), weight: Number(opts.weight ?? 1) })
          : await call('DELETE', `/api/instances/${encodeURIComponent(arg)}`);
        print(data, () => `${cmd === 'add' ? 'added' : 'removed'} ${arg}${data.reloaded ? ' (Kamailio reloaded)' : ''}`);
        return 0;
      }
      default:
        io.err(cmd ? `rtprelay-ctl: unknown command "${cmd}"\n\n${USAGE}` : USAGE);
        return 2;
    }
  } catch (e) {
    if (e instanceof CliError) { io.err(`rtprelay-ctl: ${e.message}`); return 1; }
    throw e;
  }
}

class CliError extends Error {}
