// A call thread (--call-threads): a whole session core for the calls whose call-id hashes here,
// with a LocalMediaPlane on this thread's slice of the port range, so a command's sockets are
// bound, planned and relayed in the thread that decided them (no message per socket). It answers
// the NG messages the main thread routes to it with its own NgServer (reply cache, errors), and
// those the native reader hands it straight from the NG socket (answered on that socket), and
// tells the main thread the replies (once per event-loop turn), call records, counts and figures.
import { workerData, type MessagePort } from 'node:worker_threads';
import { NgServer } from '../control/ng-server.js';
import { FULL_RESERVE } from '../control/reply-cache.js';
import type { CommandContext } from '../control/commands/context.js';
import { udpIo } from '../media/udp.js';
import { LocalMediaPlane } from '../media/relay.js';
import { nameThread, releasePages } from '../media/native-addon.js';
import { createLogger } from './log.js';
import { CallTable } from './session/call-table.js';
import { LocalCore } from './session/core.js';
import { SessionError } from './session/errors.js';
import {
  exactBytes, REPLY_CACHED, REPLY_ERROR, type CallThreadInit, type NgHandover, type FromThread, type ThreadCert, type ThreadRequest, type ThreadView, type ToThread,
} from './call-threads.js';

const { init, port } = workerData as { init: CallThreadInit; port: MessagePort };
nameThread(`call-${init.index}`);
const log = createLogger(init.log).child({ thread: init.index });

const clock = { nowMs: Date.now() };
const tick = setInterval(() => { clock.nowMs = Date.now(); }, 250);
const io = udpIo(init.socketIo);
io.setParking?.(init.socketPark.ms, init.socketPark.maxOpen);
const plane = new LocalMediaPlane(init.range, clock, init.addresses, { io });
let cert: ThreadCert | null = null;
const setCert = (c: ThreadCert): void => { cert = c; plane.setCertificate({ certPem: c.certPem, keyPem: c.keyPem }); };
if (init.cert) setCert(init.cert);
const table = new CallTable({
  ...init.session,
  fingerprint: (hash) => cert?.fingerprints[hash.toLowerCase()] ?? null,
}, plane, log.child({ sub: 'session' }), clock);
table.acceptingNewCalls = init.accepting;
const core = new LocalCore(table, () => plane.ports());
// A tenth of the calls every 100 ms, as in the main thread's own table.
const sweep = setInterval(() => table.sweepPart(Date.now(), 10), 100);
const ctx: CommandContext = {
  table, core, log: log.child({ sub: 'control' }), startedMs: init.startedMs, nowMs: () => Date.now(),
  stats: { byCommand: new Map(), byProxy: new Map() }, ports: () => plane.ports(),
};
const ng = new NgServer(ctx, log.child({ sub: 'control' }), {
  udp: [], tcp: [],
  // Its replies leave on the main thread's NG socket as each command finishes (ng-server.ts's queueReply).
  replyNow: true,
  replyCache: { reserveBytes: FULL_RESERVE, release: releasePages },
  onCount: (command, source, error, us) => { (lazy().counts ??= []).push(command, source, error ? 1 : 0, us); },
});

// NG commands handed to this thread by the main thread's native reader (media/udp.ts NgRouting),
// answered on the main thread's NG socket from here.
let serving = false;
const serveNg = async (list: NgHandover[]): Promise<void> => {
  const routing = io.ngRouting;
  if (serving || !routing || list.length === 0) return;
  serving = true;
  for (const h of list) await ng.adoptUdp((onPacket, onError) => routing.adopt(h, onPacket, onError));
  if (!routing.serve(init.index)) log.warn('ng commands not handed to this thread: the main thread routes them');
};

// ---- what goes to the main thread: one message per event-loop turn ----
let out: FromThread = {};
let queued = false;
let lazyTimer: NodeJS.Timeout | null = null;
let sent = { created: -1, current: -1, deleting: -1 };
const flush = (): void => {
  queued = false;
  if (lazyTimer !== null) { clearTimeout(lazyTimer); lazyTimer = null; }
  const m = out;
  out = {};
  // The call counts go with the replies that changed them: the main thread's totals (drained
  // yet? statistics) are never behind a reply it has sent.
  const t = table.totals();
  if (t.callsCreated !== sent.created || t.current !== sent.current || t.deleting !== sent.deleting) {
    sent = { created: t.callsCreated, current: t.current, deleting: t.deleting };
    m.totals = t;
  }
  port.postMessage(m);
};
const later = (): FromThread => {
  if (!queued) { queued = true; setImmediate(flush); }
  return out;
};
/**
 * What no reply waits for (counts of handed-over commands, call records) leaves within LAZY_MS,
 * with whatever else goes then: a message per event-loop turn woke the main thread per command
 * batch. A `view` request (statistics, metrics, a drain's check) flushes it at once.
 */
const LAZY_MS = 20;
const lazy = (): FromThread => {
  if (!queued && lazyTimer === null) lazyTimer = setTimeout(flush, LAZY_MS);
  return out;
};
const reply = (id: number, buf: Buffer | null, flags: number): void => {
  (later().replies ??= []).push(id, buf === null ? null : exactBytes(buf), flags);
};

core.onCallRecord((r) => { (lazy().records ??= []).push(r); });
core.onRecordingDone((r) => { (lazy().recordings ??= []).push(r); });

const view = (): ThreadView => ({
  totals: table.totals(), media: table.mediaTotals(), ports: plane.ports(), recordingFailures: table.recordingFailures,
  replyCache: ng.replyCacheFigures(),
});
// Once a second unasked: media counters and port use move without a command (and calls that end
// on a timeout are counted here even when nothing else is sent).
const report = setInterval(() => { later().view = view(); }, 1000);


port.on('message', (m: ToThread) => {
  switch (m.op) {
    case 'ng': {
      const items = m.items;
      for (let i = 0; i < items.length; i += 3) {
        const id = items[i] as number;
        const bytes = items[i + 1] as Uint8Array;
        const msg = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        let r;
        try {
          r = ng.handleRouted(msg, items[i + 2] as string);
        } catch (err) {
          log.error({ err }, 'ng handling failed');
          reply(id, null, 0);
          continue;
        }
        if (r === null) { reply(id, null, 0); continue; }
        if (!(r instanceof Promise)) { reply(id, r.reply, (r.cached ? REPLY_CACHED : 0) | (r.error ? REPLY_ERROR : 0)); continue; }
        r.then(
          (x) => reply(id, x.reply, (x.cached ? REPLY_CACHED : 0) | (x.error ? REPLY_ERROR : 0)),
          (err) => { log.error({ err }, 'ng handling failed'); reply(id, null, 0); },
        );
      }
      break;
    }
    case 'cert': setCert(m.cert); break;
    case 'ng-sockets': void serveNg(m.ng); break;
    case 'req': void answer(m.id, m.req); break;
    case 'crash': setImmediate(() => { throw new Error('crash requested (test hook)'); }); break;
  }
});

async function answer(id: number, req: ThreadRequest): Promise<void> {
  try {
    const value = await run(req);
    (later().res ??= []).push({ id, value });
  } catch (e) {
    const err = e as Error;
    (later().res ??= []).push({ id, error: { code: e instanceof SessionError ? e.code : null, message: err.message } });
  }
}

async function run(req: ThreadRequest): Promise<unknown> {
  switch (req.what) {
    case 'view': return view();
    case 'accepting': table.acceptingNewCalls = req.value; return view();
    case 'list': return table.list(req.limit);
    case 'query': return table.query(req.opts);
    case 'delete': return table.delete(req.opts);
    case 'destroyAll': table.destroyAll(req.reason); return null;
    case 'stop':
      clearInterval(tick); clearInterval(sweep); clearInterval(report);
      await ng.close();
      table.destroyAll('shutdown');
      await plane.shutdown();
      log.flush();
      return null; // the main thread then stops the thread
  }
}

void serveNg(init.ng);
later().ready = true;
later().view = view();
