// One ICE agent per relay socket (RFC 8445, RFC 7675), for one component of one media stream. The
// socket is our only local candidate (a host candidate). Pure logic: the relay hands it STUN
// messages and calls `tick` every TA_MS; it sends through `host.send` and reports the pair media
// may use through `host.onSelected`. Imports only media/.
//
// Lite (we are ICE-lite, RFC 8445 §2.5): answer checks only; the controlling peer nominates.
// Full: paced checks to the party's candidates, nomination when controlling (regular: a second
// check with USE-CANDIDATE on the first valid pair), consent freshness on the selected pair.
import { randomBytes } from 'node:crypto';
import {
  buildBindingError, buildBindingRequest, buildBindingSuccess, checkFingerprint, checkIntegrity,
  STUN_TYPE, type StunMessage,
} from './stun.js';
import type { Endpoint, IceCandidate, SocketIce } from '../plane.js';

/** Pacing of new checks (RFC 8445 §14.2 default Ta). */
export const TA_MS = 50;
/** First retransmission timeout of a check, doubled each time; MAX_TRIES sends in all. */
export const RTO_MS = 250;
export const MAX_TRIES = 7;
/** Consent freshness (RFC 7675 §5.1): a check every 4–6 s, consent lost after 30 s unanswered. */
export const CONSENT_INTERVAL_MS = 5000;
export const CONSENT_TIMEOUT_MS = 30_000;
/** Full ICE gives up when nothing is valid this long after the first check was possible. */
export const CHECKING_TIMEOUT_MS = 30_000;

export interface IceHost {
  send(buf: Buffer, address: string, port: number): void;
  /** The pair media goes to changed (null: none, stop sending). */
  onSelected(remote: Endpoint | null): void;
  onState(state: 'connected' | 'failed'): void;
}

type PairState = 'waiting' | 'in-progress' | 'succeeded' | 'failed';

interface Pair {
  address: string;
  port: number;
  priority: bigint;
  remotePriority: number;
  state: PairState;
  /** The party checked us on this pair with USE-CANDIDATE (controlled side) or our nominating check succeeded. */
  nominateRequested: boolean;
  nominated: boolean;
}

interface Transaction {
  id: string;
  pair: Pair;
  message: Buffer;
  tries: number;
  nextMs: number;
  rtoMs: number;
  useCandidate: boolean;
  consent: boolean;
  /** Our role when the check was sent. */
  controlling: boolean;
}

/** RFC 8445 §5.1.2.1 priority of our host candidate: type preference 126, local preference 65535. */
export function candidatePriority(typePref: number, component: number, localPref = 65535): number {
  return ((typePref << 24) >>> 0) + (localPref << 8) + (256 - component);
}

const TYPE_PREF = { host: 126, prflx: 110, srflx: 100, relay: 0 } as const;

function pairPriority(controlling: number, controlled: number): bigint {
  const g = BigInt(controlling), d = BigInt(controlled);
  const min = g < d ? g : d, max = g < d ? d : g;
  return (1n << 32n) * min + 2n * max + (g > d ? 1n : 0n);
}

function key(address: string, port: number): string { return `${address} ${port}`; }

export class IceAgent {
  state: 'checking' | 'connected' | 'failed' = 'checking';
  /** Where media goes: the nominated pair, else the best valid pair (null: none yet). */
  selected: Endpoint | null = null;
  private cfg: SocketIce;
  private controlling: boolean;
  private readonly tieBreaker: bigint;
  private readonly localPriority: number;
  private readonly prflxPriority: number;
  private readonly pairs = new Map<string, Pair>();
  private readonly transactions = new Map<string, Transaction>();
  private readonly triggered: Pair[] = [];
  private nextCheckMs = 0;
  private startMs = -1;
  private lastConsentMs = 0;
  private nextConsentMs = 0;
  private closed = false;

  constructor(cfg: SocketIce, private readonly component: 1 | 2, private readonly host: IceHost, nowMs: number, tieBreaker?: bigint) {
    this.cfg = cfg;
    this.controlling = cfg.controlling && !cfg.lite;
    this.tieBreaker = tieBreaker ?? randomBytes(8).readBigUInt64BE(0);
    this.localPriority = candidatePriority(TYPE_PREF.host, component);
    this.prflxPriority = candidatePriority(TYPE_PREF.prflx, component);
    this.addCandidates(cfg.candidates, nowMs);
  }

  get isControlling(): boolean { return this.controlling; }
  get lite(): boolean { return this.cfg.lite; }

  /** Whether a plan names the same ICE session (same credentials): if not, the agent is replaced (ICE restart). */
  sameSession(cfg: SocketIce): boolean {
    return cfg.localUfrag === this.cfg.localUfrag && cfg.localPwd === this.cfg.localPwd && cfg.lite === this.cfg.lite
      && (this.cfg.remoteUfrag === null || cfg.remoteUfrag === this.cfg.remoteUfrag);
  }

  /** A new plan of the same session: the party's credentials may have arrived, candidates added (trickle). */
  update(cfg: SocketIce, nowMs: number): void {
    this.cfg = cfg;
    this.addCandidates(cfg.candidates, nowMs);
  }

  /** Media may come from this source: a pair that passed a check either way. */
  isValid(address: string, port: number): boolean {
    const p = this.pairs.get(key(address, port));
    return p !== undefined && p.state === 'succeeded';
  }

  close(): void { this.closed = true; this.transactions.clear(); this.triggered.length = 0; }

  private addCandidates(cands: readonly IceCandidate[], nowMs: number): void {
    for (const c of cands) {
      if (c.component !== this.component || this.pairs.has(key(c.address, c.port))) continue;
      this.addPair(c.address, c.port, c.priority, 'waiting');
    }
    if (!this.cfg.lite && this.startMs < 0 && this.cfg.remotePwd !== null && this.pairs.size > 0) this.startMs = nowMs;
  }

  private addPair(address: string, port: number, remotePriority: number, state: PairState): Pair {
    const p: Pair = {
      address, port, remotePriority, state, nominateRequested: false, nominated: false,
      priority: this.controlling ? pairPriority(this.localPriority, remotePriority) : pairPriority(remotePriority, this.localPriority),
    };
    this.pairs.set(key(address, port), p);
    return p;
  }

  /** A STUN message that arrived on the socket from address:port. */
  onStun(msg: StunMessage, address: string, port: number, nowMs: number): void {
    if (this.closed) return;
    // RFC 8445 §7.3 / RFC 8489 §7.3: a message whose FINGERPRINT is missing or wrong is not ours.
    if (!checkFingerprint(msg)) return;
    if (msg.type === STUN_TYPE.bindingRequest) this.onRequest(msg, address, port, nowMs);
    else if (msg.type === STUN_TYPE.bindingSuccess || msg.type === STUN_TYPE.bindingError) this.onResponse(msg, address, port, nowMs);
    // Indications (keepalives) need no answer.
  }

  private onRequest(msg: StunMessage, address: string, port: number, nowMs: number): void {
    const pwd = this.cfg.localPwd;
    // RFC 8489 §9.1.3: no MESSAGE-INTEGRITY or USERNAME → 400; wrong user or integrity → 401 (unsigned).
    if (msg.integrityAt < 0 || msg.username === undefined) {
      this.host.send(buildBindingError(msg, 400, 'Bad Request'), address, port);
      return;
    }
    const colon = msg.username.indexOf(':');
    const ours = colon < 0 ? msg.username : msg.username.slice(0, colon);
    const theirs = colon < 0 ? null : msg.username.slice(colon + 1);
    if (ours !== this.cfg.localUfrag || theirs === null || (this.cfg.remoteUfrag !== null && theirs !== this.cfg.remoteUfrag)
      || !checkIntegrity(msg, pwd)) {
      this.host.send(buildBindingError(msg, 401, 'Unauthenticated'), address, port);
      return;
    }
    if (msg.unknownRequired.length > 0) {
      this.host.send(buildBindingError(msg, 420, 'Unknown Attribute', pwd), address, port);
      return;
    }
    // RFC 8445 §7.3.1.1 role conflict (a lite agent is always controlled and does not contend).
    if (!this.cfg.lite) {
      if (this.controlling && msg.iceControlling !== undefined) {
        if (this.tieBreaker >= msg.iceControlling) {
          this.host.send(buildBindingError(msg, 487, 'Role Conflict', pwd), address, port);
          return;
        }
        this.setRole(false);
      } else if (!this.controlling && msg.iceControlled !== undefined) {
        if (this.tieBreaker >= msg.iceControlled) this.setRole(true);
        else {
          this.host.send(buildBindingError(msg, 487, 'Role Conflict', pwd), address, port);
          return;
        }
      }
    }
    const ok = buildBindingSuccess(msg, address, port, pwd);
    if (ok === null) return;
    this.host.send(ok, address, port);
    let pair = this.pairs.get(key(address, port));
    if (this.cfg.lite) {
      // The party checked this address and we answered: a valid pair for a lite agent.
      if (!pair) pair = this.addPair(address, port, msg.priority ?? 0, 'succeeded');
      pair.state = 'succeeded';
      if (msg.useCandidate) pair.nominated = true;
      this.reselect(nowMs);
      return;
    }
    // Full: a triggered check (RFC 8445 §7.3.1.4), with a peer-reflexive pair when new.
    if (!pair) pair = this.addPair(address, port, msg.priority ?? 0, 'waiting');
    if (msg.useCandidate && !this.controlling) {
      pair.nominateRequested = true;
      if (pair.state === 'succeeded') { pair.nominated = true; this.reselect(nowMs); }
    }
    if (pair.state !== 'succeeded' && pair.state !== 'in-progress' && !this.triggered.includes(pair)) {
      if (pair.state === 'failed') pair.state = 'waiting';
      this.triggered.push(pair);
    }
    if (this.startMs < 0) this.startMs = nowMs;
  }

  private setRole(controlling: boolean): void {
    this.controlling = controlling;
    for (const p of this.pairs.values()) {
      p.priority = controlling ? pairPriority(this.localPriority, p.remotePriority) : pairPriority(p.remotePriority, this.localPriority);
    }
  }

  private onResponse(msg: StunMessage, address: string, port: number, nowMs: number): void {
    const t = this.transactions.get(msg.transactionId.toString('hex'));
    if (!t) return;
    // Responses are signed with the party's password (RFC 8445 §7.2.5.2.1 via §7.2.2).
    if (this.cfg.remotePwd === null || !checkIntegrity(msg, this.cfg.remotePwd)) return;
    this.transactions.delete(t.id);
    const p = t.pair;
    if (msg.type === STUN_TYPE.bindingError) {
      if (msg.errorCode?.code === 487 && !t.consent) {
        // RFC 8445 §7.2.5.1: switch role and check again.
        if (t.controlling === this.controlling) this.setRole(!t.controlling);
        p.state = 'waiting';
        this.triggered.push(p);
      } else if (!t.consent) p.state = 'failed';
      return;
    }
    // RFC 8445 §7.2.5.2.1: the response must come from where the check went.
    if (address !== p.address || port !== p.port) { if (!t.consent) p.state = 'failed'; return; }
    this.lastConsentMs = nowMs;
    p.state = 'succeeded';
    if (t.useCandidate || p.nominateRequested) p.nominated = true;
    this.reselect(nowMs);
  }

  /** Picks the pair media uses: nominated first, then the highest-priority valid one. */
  private reselect(nowMs: number): void {
    let best: Pair | null = null;
    for (const p of this.pairs.values()) {
      if (p.state !== 'succeeded') continue;
      if (best === null || (p.nominated && !best.nominated) || (p.nominated === best.nominated && p.priority > best.priority)) best = p;
    }
    if (best === null) return;
    const changed = this.selected === null || this.selected.address !== best.address || this.selected.port !== best.port;
    if (changed) {
      this.selected = { address: best.address, port: best.port };
      this.host.onSelected(this.selected);
    }
    // A valid pair before nomination already carries media (RFC 8445 §12.1); 'connected' is nomination.
    if (this.state === 'checking' && (best.nominated || this.cfg.lite)) {
      this.state = 'connected';
      this.lastConsentMs = nowMs;
      this.nextConsentMs = nowMs + CONSENT_INTERVAL_MS;
      this.host.onState('connected');
    }
  }

  /** Called every TA_MS by the relay: one new check per tick, retransmissions, nomination, consent. */
  tick(nowMs: number): void {
    if (this.closed || this.cfg.lite || this.state === 'failed' || this.cfg.remotePwd === null || this.cfg.remoteUfrag === null) return;
    for (const t of this.transactions.values()) {
      if (nowMs < t.nextMs) continue;
      if (t.tries >= MAX_TRIES) {
        this.transactions.delete(t.id);
        if (!t.consent && t.pair.state === 'in-progress') t.pair.state = 'failed';
        continue;
      }
      t.tries++;
      t.rtoMs *= 2;
      t.nextMs = nowMs + t.rtoMs;
      this.host.send(t.message, t.pair.address, t.pair.port);
    }
    if (nowMs >= this.nextCheckMs) {
      const p = this.nextPair();
      if (p) { this.check(p, nowMs, false, false); this.nextCheckMs = nowMs + TA_MS; }
    }
    // Controlling: nominate the best valid pair once (regular nomination, RFC 8445 §8.1.1).
    if (this.controlling && this.selected !== null && this.state === 'checking') {
      const p = this.pairs.get(key(this.selected.address, this.selected.port))!;
      let pending = false;
      for (const t of this.transactions.values()) if (t.useCandidate) pending = true;
      if (!p.nominated && !pending) this.check(p, nowMs, true, false);
    }
    if (this.state === 'connected' && this.selected !== null) {
      if (nowMs - this.lastConsentMs >= CONSENT_TIMEOUT_MS) {
        // RFC 7675 §5.1: consent expired, stop sending at once.
        this.fail();
        return;
      }
      if (nowMs >= this.nextConsentMs) {
        const p = this.pairs.get(key(this.selected.address, this.selected.port))!;
        this.check(p, nowMs, this.controlling && p.nominated, true);
        this.nextConsentMs = nowMs + CONSENT_INTERVAL_MS * (0.8 + Math.random() * 0.4);
      }
    }
    if (this.state === 'checking' && this.startMs >= 0) {
      let live = false;
      for (const p of this.pairs.values()) if (p.state !== 'failed') live = true;
      if ((!live && this.triggered.length === 0 && this.pairs.size > 0) || nowMs - this.startMs >= CHECKING_TIMEOUT_MS) this.fail();
    }
  }

  private fail(): void {
    this.state = 'failed';
    this.transactions.clear();
    if (this.selected !== null) { this.selected = null; this.host.onSelected(null); }
    this.host.onState('failed');
  }

  private nextPair(): Pair | null {
    const t = this.triggered.shift();
    if (t) return t;
    let best: Pair | null = null;
    for (const p of this.pairs.values()) if (p.state === 'waiting' && (best === null || p.priority > best.priority)) best = p;
    return best;
  }

  private check(p: Pair, nowMs: number, useCandidate: boolean, consent: boolean): void {
    const { transactionId, message } = buildBindingRequest({
      username: `${this.cfg.remoteUfrag}:${this.cfg.localUfrag}`,
      password: this.cfg.remotePwd!,
      priority: this.prflxPriority,
      ...(this.controlling ? { controlling: this.tieBreaker } : { controlled: this.tieBreaker }),
      useCandidate,
    });
    const id = transactionId.toString('hex');
    if (!consent && p.state !== 'succeeded') p.state = 'in-progress';
    this.transactions.set(id, { id, pair: p, message, tries: 1, nextMs: nowMs + RTO_MS, rtoMs: RTO_MS, useCandidate, consent, controlling: this.controlling });
    this.host.send(message, p.address, p.port);
  }
}

