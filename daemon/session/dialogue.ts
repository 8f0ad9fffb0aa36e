// Re-offer transactions on an established dialogue, on plain call state: when a re-offer
// opens a pending state beside the committed one, which sockets belong to which, and the full
// set of socket plans for a call (live legs, old legs still relaying, retiring legs stopped).
// The call table applies these; nothing here touches sockets or NG wording.
import type { SocketPlan } from '../../media/plane.js';
import type { Call, LocalPair, MediaState, OfferAnswerOptions, Participant, PendingOffer } from './model.js';
import { forwardPlans } from './offer-answer.js';
import { isBundleMember } from './bundle.js';

export type Leg = 'committed' | 'pending';

function peerOf(ps: readonly Participant[], p: Participant): Participant | null {
  return p.peerId === null ? null : ps.find((q) => q.id === p.peerId) ?? null;
}

// Plain loops in these helpers (several run per command): nested flatMap made them ~5 % of the
// daemon's CPU under ngload, and a once-a-second sweep over 900 calls 6 ms.
export function pairsOf(ps: readonly Participant[]): LocalPair[] {
  // The extra pairs are the other addresses of the interface (ICE candidates): the call owns them too.
  // A BUNDLE member's pairs are its owner's: listed once, so closed and released once.
  const out: LocalPair[] = [];
  for (const p of ps) {
    for (const m of p.medias) {
      if (!m?.local || isBundleMember(m)) continue;
      out.push(m.local);
      if (m.localExtra) for (const l of m.localExtra) out.push(l);
    }
  }
  return out;
}

export function socketIds(ps: readonly Participant[]): number[] {
  const out: number[] = [];
  for (const l of pairsOf(ps)) out.push(l.rtp, l.rtcp);
  return out;
}

/** Every socket the call holds: live legs, committed legs a pending re-offer replaced, retiring legs. */
export function allSockets(call: Call): number[] {
  const ids = new Set(socketIds(call.participants));
  if (call.pending) for (const id of socketIds(call.pending.committed)) ids.add(id);
  for (const r of call.retiring ?? []) { ids.add(r.rtp); ids.add(r.rtcp); }
  return [...ids];
}

/**
 * Whether an offer from `fromTag` is a re-offer on an established dialogue: its sender and the
 * party it is aimed at have both completed an offer/answer with each other. Only then is there
 * a committed state to fall back to; a failed initial offer ends the call.
 */
export function opensTransaction(call: Call, opts: OfferAnswerOptions): boolean {
  if (call.answeredMs === null) return false;
  const a = call.participants.find((p) => p.tag === opts.fromTag);
  if (!a || a.sdpIn === null) return false;
  const b = peerOf(call.participants, a);
  if (!b || b.tag === '' || b.sdpIn === null || b.peerId !== a.id) return false;
  if (opts.toTag !== null && opts.toTag !== b.tag) return false;
  return opts.viaBranch === null || b.viaBranch === null || b.viaBranch === opts.viaBranch;
}

/** Which leg each live socket belongs to while a re-offer is pending (shared sockets are committed). */
export function legOf(call: Call): (id: number) => Leg {
  if (!call.pending) return () => 'committed';
  const committed = new Set(socketIds(call.pending.committed));
  return (id) => (committed.has(id) ? 'committed' : 'pending');
}

/** Committed legs that a pending re-offer replaced: they still relay until the answer or the rollback. */
export function oldLegs(call: Call): { participantTag: string; mediaIndex: number; local: LocalPair }[] {
  if (!call.pending) return [];
  const live = new Set(socketIds(call.participants));
  return call.pending.committed.flatMap((p) => p.medias.flatMap((m) => (m?.local && !isBundleMember(m) && !live.has(m.local.rtp)
    ? [{ participantTag: p.tag, mediaIndex: m.index, local: m.local }] : [])));
}

/**
 * The plans of every socket of the call. A party receives only from the participant it is
 * paired with (the branch that answered last), so a losing fork's early media stops reaching
 * the caller. While a re-offer is pending, the committed legs it replaced keep relaying into
 * the live ones; retiring legs forward nothing.
 */
export function callPlans(call: Call): SocketPlan[] {
  const plans: SocketPlan[] = [];
  const seen = new Set<number>();
  const add = (ps: readonly Participant[], onlyNew: boolean): void => {
    for (const p of ps) {
      const peer = peerOf(ps, p);
      const mutual = peer !== null && peer.peerId === p.id;
      for (const plan of forwardPlans(p, peer)) {
        if (onlyNew && seen.has(plan.id)) continue;
        seen.add(plan.id);
        plans.push(mutual ? plan : { ...plan, forward: false });
      }
    }
  };
  add(call.participants, false);
  if (call.pending) add(call.pending.committed, true);
  for (const r of call.retiring ?? []) {
    for (const [id, kind] of [[r.rtp, 'rtp'], [r.rtcp, 'rtcp']] as const) {
      if (seen.has(id)) continue;
      plans.push({
        id, kind, remote: null, sink: null, forward: false, asymmetric: false, strictSource: false,
        mediaHandover: false, payloadTypes: [], rtcpMux: false, rtcpSink: null,
      });
    }
  }
  return plans;
}

/**
 * A deep copy of plain call state (what structuredClone gives for it: holes, undefined values and
 * shared references kept; anything not a plain object or array goes through structuredClone).
 * structuredClone of an answered two-party call was ~3 % of the daemon's CPU under ngload (the
 * answer's rollback snapshot); a generic walk of it still ~9 µs (7 % of the in-process CPU per
 * command, ng-cpu --plane=stub): one spread and one for-in for objects of a dozen shapes go
 * megamorphic. cloneCall/cloneParticipants copy the call, participant and media levels each at
 * their own sites (one shape or a few each), the leaves generically: ~3 µs. Every key is still
 * copied, known or not.
 */
export function cloneState<T>(x: T): T {
  return copy(x, new Seen()) as T;
}

export function cloneCall(call: Call): Call {
  const seen = new Seen();
  const out = { ...call } as Record<string, unknown>;
  seen.set(call, out);
  for (const k in out) {
    const v = out[k];
    if (typeof v !== 'object' || v === null) continue;
    if (k === 'participants') out[k] = participantsCopy(v as Participant[], seen);
    else if (k === 'pending') out[k] = pendingCopy(v as PendingOffer, seen);
    else out[k] = copy(v, seen);
  }
  return out as unknown as Call;
}

export function cloneParticipants(ps: readonly Participant[]): Participant[] {
  return participantsCopy(ps, new Seen());
}

function pendingCopy(p: PendingOffer, seen: Seen): PendingOffer {
  const done = seen.get(p);
  if (done !== undefined) return done as PendingOffer;
  const out = { ...p } as Record<string, unknown>;
  seen.set(p, out);
  for (const k in out) {
    const v = out[k];
    if (typeof v === 'object' && v !== null) out[k] = k === 'committed' ? participantsCopy(v as Participant[], seen) : copy(v, seen);
  }
  return out as unknown as PendingOffer;
}

function participantsCopy(ps: readonly Participant[], seen: Seen): Participant[] {
  const done = seen.get(ps);
  if (done !== undefined) return done as Participant[];
  const out = ps.slice();
  seen.set(ps, out);
  for (let i = 0; i < out.length; i++) {
    const p = out[i];
    if (typeof p === 'object' && p !== null) out[i] = participantCopy(p, seen);
  }
  return out;
}

function participantCopy(p: Participant, seen: Seen): Participant {
  if (Object.getPrototypeOf(p) !== Object.prototype) return copy(p, seen) as Participant;
  const done = seen.get(p);
  if (done !== undefined) return done as Participant;
  const out = { ...p } as Record<string, unknown>;
  seen.set(p, out);
  for (const k in out) {
    const v = out[k];
    if (typeof v === 'object' && v !== null) out[k] = k === 'medias' ? mediasCopy(v as MediaState[], seen) : copy(v, seen);
  }
  return out as unknown as Participant;
}

function mediasCopy(ms: readonly MediaState[], seen: Seen): MediaState[] {
  if (!Array.isArray(ms)) return copy(ms, seen) as MediaState[];
  const done = seen.get(ms);
  if (done !== undefined) return done as MediaState[];
  const out = ms.slice();
  seen.set(ms, out);
  for (let i = 0; i < out.length; i++) {
    const m = out[i];
    if (typeof m === 'object' && m !== null) out[i] = mediaCopy(m, seen);
  }
  return out;
}

function mediaCopy(m: MediaState, seen: Seen): MediaState {
  if (Object.getPrototypeOf(m) !== Object.prototype) return copy(m, seen) as MediaState;
  const done = seen.get(m);
  if (done !== undefined) return done as MediaState;
  const out = { ...m } as Record<string, unknown>;
  seen.set(m, out);
  for (const k in out) {
    const v = out[k];
    if (typeof v === 'object' && v !== null) out[k] = copy(v, seen);
  }
  return out as unknown as MediaState;
}

/**
 * Originals → copies, for shared references. A two-party call has ~26 objects: a linear scan over
 * them beats a Map, whose identity hash each new key must get (~1 µs of the ~9 µs a clone took);
 * past 64 objects (a call with many media) the Map takes over, so the scans stay short.
 */
class Seen {
  private readonly from: object[] = [];
  private readonly to: unknown[] = [];
  private map: Map<object, unknown> | null = null;

  get(x: object): unknown {
    if (this.map !== null) return this.map.get(x);
    const from = this.from;
    for (let i = 0; i < from.length; i++) if (from[i] === x) return this.to[i];
    return undefined;
  }

  set(x: object, copy: unknown): void {
    if (this.map !== null) { this.map.set(x, copy); return; }
    this.from.push(x);
    this.to.push(copy);
    if (this.from.length > 64) this.map = new Map(this.from.map((o, i) => [o, this.to[i]]));
  }
}

function copy(x: unknown, seen: Seen): unknown {
  if (typeof x !== 'object' || x === null) return x;
  const done = seen.get(x);
  if (done !== undefined) return done;
  // A shallow copy first (slice keeps holes; a spread copies the object's shape in one go), then
  // the nested objects replaced by their copies. Built key by key (Object.keys, a keyed store
  // each), an answered two-party call took ~9 µs to clone; this way ~2.5 µs.
  if (Array.isArray(x)) {
    const out: unknown[] = x.slice();
    seen.set(x, out);
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (typeof v === 'object' && v !== null) out[i] = copy(v, seen);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(x) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const out = structuredClone(x);
    seen.set(x, out);
    return out;
  }
  const out: Record<string, unknown> = { ...(x as Record<string, unknown>) };
  seen.set(x, out);
  // for-in sees only own keys here: the copy's prototype is Object.prototype, which has none enumerable.
  for (const k in out) {
    const v = out[k];
    if (typeof v === 'object' && v !== null) out[k] = copy(v, seen);
  }
  return out;
}
