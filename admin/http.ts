// The HTTP admin surface on --listen-http: NG over `POST /ng` and WebSocket (subprotocol
// ng.rtpengine.com, as rtpengine has them), a JSON API for operators and rtprelay-ctl, and
// Prometheus /metrics. Imports the session core only; NG itself comes in as a function.
import http from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CallSnapshot } from '../daemon/session/call-table.js';
import type { SessionCore } from '../daemon/session/core.js';
import type { Instance } from '../daemon/instance.js';
import type { Metrics } from './metrics.js';
import { dashboardHtml } from './dashboard.js';

export interface AdminDeps {
  /** One NG message (`COOKIE SP PAYLOAD`) in, its reply out; null: no reply. */
  handleNg(msg: Buffer, source: string): Promise<Buffer | null>;
  table: SessionCore;
  instance: Instance;
  metrics: Metrics;
  log: Logger;
  /** Bearer token; required on every request when set (always set when bound off loopback). */
  token: string | null;
  /** The instances table, when a database is configured. */
  instances?: {
    list(): Promise<unknown>;
    add(url: string, setid: number, weight: number): Promise<void>;
    remove(url: string): Promise<number>;
  };
  /** Asks Kamailio to re-read the instances table (JSON-RPC `rtpengine.reload`), when configured. */
  reloadKamailio?: () => Promise<boolean>;
  /** Recording files from the database (rtprelay_recordings), when one is configured. */
  recordings?: {
    list(callId: string | null): Promise<Record<string, unknown>[]>;
    byId(id: number): Promise<Record<string, unknown> | null>;
  };
  /** Seconds of packets-per-second history for the dashboard chart. */
  history: () => { t: number; pps: number }[];
}

const MAX_BODY = 1024 * 1024;

export class AdminServer {
  private readonly servers: http.Server[] = [];
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_BODY,
    handleProtocols: (protocols) => (protocols.has('ng.rtpengine.com') ? 'ng.rtpengine.com' : false),
  });

  constructor(private readonly deps: AdminDeps) {
    this.wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
      const source = `ws:${req.socket.remoteAddress}:${req.socket.remotePort}`;
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        this.deps.handleNg(Buffer.from(data), source).then((reply) => {
          if (reply && ws.readyState === ws.OPEN) ws.send(reply, { binary: isBinary });
        }, (err) => this.deps.log.error({ err }, 'ng over websocket failed'));
      });
      ws.on('error', () => ws.terminate());
    });
  }

  async listen(endpoints: readonly { address: string; port: number }[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const ep of endpoints) {
      const srv = http.createServer((req, res) => { void this.route(req, res); });
      srv.on('upgrade', (req, socket, head) => {
        if (!this.authorized(req)) { socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'); return; }
        this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
      });
      srv.headersTimeout = 10_000;
      srv.requestTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(ep.port, ep.address, () => { srv.off('error', reject); resolve(); });
      });
      this.servers.push(srv);
      bound.push(srv.address() as AddressInfo);
    }
    return bound;
  }

  private authorized(req: http.IncomingMessage): boolean {
    const token = this.deps.token;
    if (token === null) return true;
    const given = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    const want = Buffer.from(token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname;
      if (req.method === 'GET' && path === '/ping') return send(res, 200, 'pong', 'text/plain');
      // The page holds no data; its API calls carry the token (?token= on the page's URL).
      if (req.method === 'GET' && (path === '/' || path === '/dashboard')) return send(res, 200, dashboardHtml, 'text/html; charset=utf-8');
      if (!this.authorized(req)) return json(res, 401, { error: 'missing or wrong bearer token' });
      if (req.method === 'POST' && path === '/ng') {
        const body = await readBody(req);
        const reply = await this.deps.handleNg(body, `http:${req.socket.remoteAddress}:${req.socket.remotePort}`);
        if (!reply) return send(res, 400, 'no cookie', 'text/plain');
        return send(res, 200, reply, 'application/x-rtpengine-ng');
      }
      if (req.method === 'GET' && path === '/metrics') {
        return send(res, 200, await this.deps.metrics.render(), this.deps.metrics.contentType);
      }
      if (path.startsWith('/api/')) return await this.api(req, res, path.slice(5).split('/').map(decodeURIComponent), url);
      json(res, 404, { error: 'not found' });
    } catch (err) {
      if (err instanceof HttpError) return json(res, err.status, { error: err.message });
      this.deps.log.error({ err }, 'admin request failed');
      json(res, 500, { error: 'internal error' });
    }
  }

  private async api(req: http.IncomingMessage, res: http.ServerResponse, parts: string[], url: URL): Promise<void> {
    const { table, instance } = this.deps;
    const get = req.method === 'GET', post = req.method === 'POST';
    const [what, id, action] = parts;
    if (get && what === 'calls' && id === undefined) {
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 1000) || 1000, 100_000);
      const ids = await table.list(limit);
      const calls = await Promise.all(ids.map((callId) => summary(table, callId)));
      return json(res, 200, { calls: calls.filter((c) => c !== null) });
    }
    if (get && what === 'calls' && id !== undefined && action === undefined) {
      const c = await snapshotOf(table, id);
      if (!c) return json(res, 404, { error: 'no such call' });
      return json(res, 200, c);
    }
    if (post && what === 'calls' && id !== undefined && action === 'terminate') {
      const r = await table.delete({ callId: id, fromTag: null, toTag: null, viaBranch: null, fatal: false, deleteDelayS: 0, rollback: 'never' });
      return json(res, r.found ? 200 : 404, r.found ? { terminated: [id] } : { error: 'no such call' });
    }
    if (post && what === 'terminate-all') {
      const ids = await table.list(Number.MAX_SAFE_INTEGER);
      for (const callId of ids) await table.delete({ callId, fromTag: null, toTag: null, viaBranch: null, fatal: false, deleteDelayS: 0, rollback: 'never' });
      return json(res, 200, { terminated: ids });
    }
    if (get && (what === 'totals' || what === 'instance')) await table.refresh();
    if (get && what === 'totals') return json(res, 200, { ...table.totals(), instance: instance.state, history: this.deps.history() });
    if (get && what === 'instance') return json(res, 200, { state: instance.state, calls: table.totals().current });
    if (what === 'instances') return this.instancesApi(req, res, id);
    if (get && what === 'recordings') return this.recordingsApi(res, id, url.searchParams.get('call'));
    if (get && what === 'calls' && id !== undefined && action === 'recordings') return this.recordingsApi(res, undefined, id);
    if (post && (what === 'drain' || what === 'enable' || what === 'disable')) {
      instance.set(what === 'drain' ? 'draining' : what === 'enable' ? 'active' : 'disabled', 'http');
      // Call threads take the change in their own time: the reply tells the state once they have.
      await table.refresh();
      instance.check();
      return json(res, 200, { state: instance.state });
    }
    json(res, 404, { error: 'not found' });
  }

  /**
   * GET /api/recordings[?call=ID] lists recording files (newest first); GET /api/recordings/N
   * downloads file N. Only paths the database holds are ever served.
   */
  private async recordingsApi(res: http.ServerResponse, id: string | undefined, callId: string | null): Promise<void> {
    const store = this.deps.recordings;
    const failures = this.deps.table.recordingFailures;
    if (!store) return json(res, id === undefined ? 200 : 404, id === undefined ? { recordings: [], failures } : { error: 'no database configured' });
    if (id === undefined) return json(res, 200, { recordings: await store.list(callId), failures });
    if (!/^\d+$/.test(id)) return json(res, 404, { error: 'no such recording' });
    const row = await store.byId(Number(id));
    if (!row) return json(res, 404, { error: 'no such recording' });
    const file = String(row.path);
    let size: number;
    try { size = (await stat(file)).size; } catch { return json(res, 410, { error: 'recording file is gone' }); }
    const type = file.endsWith('.pcap') ? 'application/vnd.tcpdump.pcap' : file.endsWith('.wav') ? 'audio/wav' : 'application/json';
    res.writeHead(200, {
      'content-type': type, 'content-length': size,
      'content-disposition': `attachment; filename="${file.slice(file.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_')}"`,
    });
    await new Promise<void>((resolve) => {
      const rs = createReadStream(file);
      rs.on('error', () => { res.destroy(); resolve(); });
      rs.on('end', () => resolve());
      rs.pipe(res);
    });
  }

  private async instancesApi(req: http.IncomingMessage, res: http.ServerResponse, url: string | undefined): Promise<void> {
    const store = this.deps.instances;
    if (!store) return json(res, req.method === 'GET' ? 200 : 409, req.method === 'GET' ? { instances: [] } : { error: 'no database configured' });
    try {
      if (req.method === 'GET' && url === undefined) return json(res, 200, await store.list());
      if (req.method === 'POST' && url === undefined) {
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { url?: unknown; setid?: unknown; weight?: unknown };
        if (typeof body.url !== 'string' || !/^(udp6?|tcp):\S+:\d+$/.test(body.url)) throw new HttpError(400, 'url must look like udp:HOST:PORT');
        await store.add(body.url, Number(body.setid ?? 0) || 0, Number(body.weight ?? 1) || 1);
        return json(res, 200, { added: body.url, reloaded: (await this.deps.reloadKamailio?.()) ?? false });
      }
      if (req.method === 'DELETE' && url !== undefined) {
        const n = await store.remove(url);
        if (!n) return json(res, 404, { error: 'no such instance' });
        return json(res, 200, { removed: url, reloaded: (await this.deps.reloadKamailio?.()) ?? false });
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof SyntaxError) throw new HttpError(400, 'body is not JSON');
      throw new HttpError(503, (err as Error).message);
    }
    json(res, 404, { error: 'not found' });
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
  }
}

async function snapshotOf(table: SessionCore, callId: string): Promise<CallSnapshot | null> {
  try {
    return await table.query({ callId, fromTag: null, toTag: null });
  } catch {
    return null; // ended between list and query
  }
}

async function summary(table: SessionCore, callId: string): Promise<unknown> {
  const c = await snapshotOf(table, callId);
  if (!c) return null;
  return {
    callId, createdMs: c.createdMs, lastSignalMs: c.lastSignalMs,
    tags: c.participants.map((p) => p.tag), totals: c.totals,
  };
}

class HttpError extends Error {
  constructor(readonly status: number, msg: string) { super(msg); }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) { reject(new HttpError(413, 'body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json');
}
