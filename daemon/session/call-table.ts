// The call table: creates, finds and ends calls, runs offer/answer against it, ends calls on
// timeouts (a once-a-second sweep with the time passed in), and reports calls as plain
// snapshots. Knows nothing of NG wording; throws SessionError.
import type { Logger } from 'pino';
import type { LogicalInterface } from '../config/load.js';
import { join } from 'node:path';
import type { MediaPlane, PlaneEvent, RecordedFile, RecordingStream, SocketStats, StreamQuality } from '../../media/plane.js';
import { ChurnMap } from '../../media/churn-map.js';
import { fileStem } from '../../media/recording/recorder.js';
import { SessionError } from './errors.js';
import type {
  Call, DeleteOptions, LocalPair, MediaState, OfferAnswerOptions, Participant, QueryOptions, RecordingOptions,
} from './model.js';
import { applyAnswer, applyOffer, LOOP_PROTECT_ID, type OfferAnswerContext } from './offer-answer.js';
import { allSockets, callPlans, cloneCall, cloneParticipants, legOf, oldLegs, opensTransaction, pairsOf, socketIds, type Leg } from './dialogue.js';
import { mediaInfo, parseSdp, STATIC_PAYLOAD_TYPES } from './sdp.js';
import { isBundleMember } from './bundle.js';

export interface SessionConfig {
  interfaces: readonly LogicalInterface[];
  timeouts: { timeoutS: number; silentTimeoutS: number; finalTimeoutS: number; offerTimeoutS: number; deleteDelayS: number };
  maxSessions: number;
  sipSource: boolean;
  /** Call recording: where the files go (null: recording requests are refused with a log line). */
  recording?: { dir: string | null };
  /** Our DTLS certificate's a=fingerprint value per hash (main.ts, from media/dtls); absent: no DTLS in SDP. */
  fingerprint?: (hash: string) => string | null;
}

/** A recording that ended (its files closed), for the database and the HTTP API. */
export interface RecordingDone {
  callId: string;
  metadata: string;
  startedMs: number;
  endedMs: number;
  files: RecordedFile[];
  error: string | null;
}

export interface StreamSnapshot {
  kind: 'rtp' | 'rtcp';
  local: { address: string; port: number; family: 4 | 6 } | null;
  /** Where we send: learned, else from the SDP. */
  endpoint: { address: string; port: number } | null;
  /** What the SDP said. */
  advertised: { address: string; port: number } | null;
  confirmed: boolean;
  stats: { packets: number; bytes: number; errors: number; dropped: number; lastPacketMs: number };
  ssrc: number | null;
  /** RTP statistics of what the party sent here (RTP streams only, once media arrived). */
  quality: StreamQuality | null;
  rtcpMuxed: boolean;
  /** The committed state's leg, or one that a pending re-offer opened. */
  leg: Leg;
}

export interface MediaSnapshot {
  index: number;
  type: string;
  protocol: string;
  direction: string;
  rtcpMux: boolean;
  asymmetric: boolean;
  strictSource: boolean;
  mediaHandover: boolean;
  initialized: boolean;
  streams: StreamSnapshot[];
  /** Committed legs a pending re-offer replaced; they relay until it is answered or rolled back. */
  oldStreams: StreamSnapshot[];
}

export interface ParticipantSnapshot {
  tag: string;
  viaBranch: string | null;
  label: string | null;
  createdMs: number;
  /** Tags (or '' for untagged) of the participants whose media this one receives / sends to. */
  peers: string[];
  medias: MediaSnapshot[];
}

export interface CallSnapshot {
  callId: string;
  createdMs: number;
  lastSignalMs: number;
  participants: ParticipantSnapshot[];
  totals: { rtp: Counter; rtcp: Counter };
  /** A re-offer waiting for its answer: who sent it and since when. */
  pending: { offererTag: string; sinceMs: number } | null;
  /** The call's recording, if it was ever recorded: state and the files it writes. */
  recording: { state: string; metadata: string; files: string[]; error: string | null } | null;
}

interface Counter { packets: number; bytes: number; errors: number }

export interface TableTotals {
  callsCreated: number;
  callsEnded: Record<string, number>;
  current: number;
  deleting: number;
}

export type OfferResult = { sdp: string } | { sdp: string; unchanged: true };

export type DeleteResult =
  | { found: false; snapshot: null }
  /** `rolledBack`: a pending re-offer was undone and the call kept; `nothingPending`: `rollback` asked, nothing to undo. */
  | { found: true; snapshot: CallSnapshot | null; rolledBack?: boolean; nothingPending?: boolean };

export class CallTable {
  // ChurnMaps: calls come and go all the time (media/churn-map.ts says why not a Map).
  private readonly calls = new ChurnMap<string, Call>();
  /** Serialises commands per call: each runs to its end before the next for the same call-id. */
  private readonly busy = new ChurnMap<string, Promise<unknown>>();
  private readonly socketOwner = new ChurnMap<number, string>(true);
  private created = 0;
  /** Calls awaiting their delayed delete (deleteAtMs set). */
  private deleting = 0;
  private readonly ended: Record<string, number> = {};
  /** When false, new calls are refused (drain); existing ones go on. */
  acceptingNewCalls = true;
  private readonly endedListeners: ((snapshot: CallSnapshot, reason: string) => void)[] = [];
  private readonly recordingListeners: ((r: RecordingDone) => void)[] = [];
  /** Recordings stopped by a file error (full disk, unwritable directory); their calls went on. */
  recordingFailures = 0;

  constructor(
    private readonly cfg: SessionConfig,
    private readonly plane: MediaPlane,
    private readonly log: Logger,
    private readonly clock: { nowMs: number },
  ) {
    plane.onEvent((ev) => this.onPlaneEvent(ev));
  }

  private onPlaneEvent(ev: PlaneEvent): void {
    if (ev.type === 'lost') {
      // A media worker died with these sockets: their calls cannot carry media any more.
      const ids = new Set(ev.ids);
      for (const call of [...this.calls.values()]) {
        if (socketsOf(call).some((id) => ids.has(id))) this.destroy(call, 'media-lost');
      }
      return;
    }
    if (ev.type === 'recording-failed') {
      this.log.error({ callId: ev.group, error: ev.error }, 'recording stopped');
      this.recordingFailed(ev.group, ev.error);
      return;
    }
    const callId = this.socketOwner.get(ev.id) ?? null;
    switch (ev.type) {
      case 'learned': this.log.info({ callId, socket: ev.id, remote: ev.remote, previous: ev.previous }, 'peer learned'); break;
      case 'confirmed': this.log.debug({ callId, socket: ev.id, remote: ev.remote }, 'peer confirmed'); break;
      case 'ice': this.log.info({ callId, socket: ev.id, state: ev.state, remote: ev.remote }, 'ice'); break;
      case 'dtls': this.log[ev.state === 'failed' ? 'warn' : 'info']({ callId, socket: ev.id, state: ev.state, reason: ev.reason }, 'dtls'); break;
    }
  }

  get size(): number { return this.calls.size; }

  private liveCount(): number {
    let n = 0;
    for (const c of this.calls.values()) if (c.deleteAtMs === null) n++;
    return n;
  }

  /**
   * Runs `fn` after the call's previous command has settled. An idle call (the usual case) runs
   * it at once: two promises per command instead of the five of a then/catch/await chain.
   */
  private exclusive<T>(callId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(callId);
    const run = prev === undefined ? fn() : prev.then(fn, fn);
    const done = (): void => { if (this.busy.get(callId) === tail) this.busy.delete(callId); };
    const tail: Promise<unknown> = run.then(done, done);
    this.busy.set(callId, tail);
    return run;
  }

  private readonly warn = (fields: object, msg: string): void => this.log.warn(fields, msg);

  private context(retired: number[]): OfferAnswerContext {
    const ctx: OfferAnswerContext = {
      plane: this.plane, interfaces: this.cfg.interfaces, sipSource: this.cfg.sipSource, nowMs: this.clock.nowMs,
      retired, warn: this.warn, callerInstalls: true,
    };
    if (this.cfg.fingerprint) ctx.fingerprint = this.cfg.fingerprint;
    return ctx;
  }

  private track(call: Call): void {
    for (const id of allSockets(call)) this.socketOwner.set(id, call.callId);
  }

  /** Replaced legs stop relaying now and close after delete-delay (at once with 0). */
  private retire(call: Call, pairs: LocalPair[]): void {
    if (!pairs.length) return;
    const delayMs = this.cfg.timeouts.deleteDelayS * 1000;
    if (delayMs <= 0) { this.closeSockets(pairs.flatMap((l) => [l.rtp, l.rtcp])); return; }
    (call.retiring ??= []).push(...pairs.map((l) => ({ rtp: l.rtp, rtcp: l.rtcp, atMs: this.clock.nowMs + delayMs })));
  }

  /** Puts back the committed state of a pending re-offer; the legs only it opened close at once. */
  private rollbackPending(call: Call, why: string): void {
    const pending = call.pending;
    if (!pending) return;
    const keep = new Set(socketIds(pending.committed));
    const dropped = socketIds(call.participants).filter((id) => !keep.has(id));
    call.participants = pending.committed;
    call.pending = null;
    this.plane.install(callPlans(call));
    this.closeSockets(dropped);
    this.log.info({ callId: call.callId, offererTag: pending.offererTag, why }, 're-offer rolled back');
  }

  private closeSockets(ids: number[]): void {
    for (const id of ids) this.socketOwner.delete(id);
    this.plane.close(ids);
  }

  // offer/answer/delete are not `async`: an async function returning exclusive()'s promise wraps
  // it in one more promise and resolves that through an extra thenable job per command.
  offer(opts: OfferAnswerOptions): Promise<OfferResult> {
    // loop-protect: an SDP that already passed through us comes back untouched, and no call is made.
    // Only our own marker is a loop; another relay's a=rtpengine passes on (as in rtpengine).
    if (opts.flags.has('loop-protect') && new RegExp(`^a=rtpengine:${LOOP_PROTECT_ID}\\r?$`, 'm').test(opts.sdp)) {
      return Promise.resolve({ sdp: opts.sdp, unchanged: true });
    }
    return this.exclusive(opts.callId, async () => {
      let call = this.calls.get(opts.callId);
      const isNew = call === undefined;
      if (!call) {
        if (!this.acceptingNewCalls) throw new SessionError('SESSION_LIMIT', 'not accepting new calls');
        if (this.cfg.maxSessions >= 0 && this.liveCount() >= this.cfg.maxSessions) {
          throw new SessionError('SESSION_LIMIT', 'max-sessions reached');
        }
        call = {
          callId: opts.callId, createdMs: this.clock.nowMs, lastSignalMs: this.clock.nowMs, answeredMs: null,
          participants: [], nextParticipantId: 1, deleteAtMs: null, deleteReason: null,
        };
      }
      // Identical retransmitted offer (session refresh): same SDP back, nothing changes.
      const a = call.participants.find((p) => p.tag === opts.fromTag);
      const peer = a?.peerId == null ? undefined : call.participants.find((p) => p.id === a.peerId);
      if (a && a.sdpIn === opts.sdp && a.sdpOut !== null && peer && (opts.toTag === null || opts.toTag === peer.tag)
        && (opts.viaBranch === null || peer.viaBranch === opts.viaBranch)) {
        call.lastSignalMs = this.clock.nowMs;
        return { sdp: a.sdpOut };
      }
      const snapshot = isNew ? null : cloneCall(call);
      // A re-offer on an established dialogue keeps the committed state beside it until answered.
      const opens = !isNew && !call.pending && opts.fromTag !== '' && opensTransaction(call, opts);
      const committed = opens ? cloneParticipants(call.participants) : call.pending?.committed ?? null;
      const retired: number[] = [];
      try {
        const sdp = await applyOffer(this.context(retired), call, opts);
        if (opens) {
          call.pending = { committed: committed!, offererTag: opts.fromTag, sinceMs: this.clock.nowMs };
          this.log.info({ callId: call.callId, fromTag: opts.fromTag }, 're-offer pending');
        }
        if (isNew) {
          this.calls.set(call.callId, call);
          this.created++;
          this.log.info({ callId: call.callId, fromTag: opts.fromTag }, 'call created');
        }
        if (call.deleteAtMs !== null) this.deleting--;
        call.deleteAtMs = null;
        call.deleteReason = null;
        call.lastSignalMs = this.clock.nowMs;
        this.track(call);
        // Legs the re-offer replaced stay open while they are committed ones (old legs relay).
        const keep = new Set(committed ? socketIds(committed) : []);
        this.closeSockets(retired.filter((id) => !keep.has(id)));
        this.plane.install(callPlans(call));
        this.syncRecording(call, opts);
        return { sdp };
      } catch (e) {
        this.rollback(call, snapshot);
        throw e;
      }
    });
  }

  answer(opts: OfferAnswerOptions): Promise<{ sdp: string }> {
    return this.exclusive(opts.callId, async () => {
      const call = this.calls.get(opts.callId);
      if (!call || call.deleteAtMs !== null && call.deleteAtMs <= this.clock.nowMs) throw new SessionError('NO_CALL', 'unknown call-id');
      const b = call.participants.find((p) => p.tag === opts.toTag);
      const a = call.participants.find((p) => p.tag === opts.fromTag);
      // Identical re-answer: nothing changes, unless it completes a re-offer or picks another fork.
      if (b && b.sdpIn === opts.sdp && b.sdpOut !== null && !call.pending && a?.peerId === b.id && b.peerId === a.id) {
        call.lastSignalMs = this.clock.nowMs;
        return { sdp: b.sdpOut };
      }
      const snapshot = cloneCall(call);
      const retired: number[] = [];
      try {
        const sdp = await applyAnswer(this.context(retired), call, opts);
        call.lastSignalMs = this.clock.nowMs;
        this.track(call);
        // Commit: legs of the committed state or of the last offer that are no longer used stop,
        // and their ports go back after delete-delay.
        const live = new Set(socketIds(call.participants));
        const before = [...pairsOf(snapshot.participants), ...pairsOf(call.pending?.committed ?? [])];
        const seen = new Set<number>();
        const old = before.filter((l) => !live.has(l.rtp) && !seen.has(l.rtp) && seen.add(l.rtp));
        if (call.pending) this.log.info({ callId: call.callId, offererTag: call.pending.offererTag }, 're-offer committed');
        call.pending = null;
        this.retire(call, old);
        this.plane.install(callPlans(call));
        this.syncRecording(call, opts);
        this.log.info({ callId: call.callId, fromTag: opts.fromTag, toTag: opts.toTag }, 'call answered');
        return { sdp };
      } catch (e) {
        this.rollback(call, snapshot);
        throw e;
      }
    });
  }

  /** Puts a call back as it was before a failed command, closing sockets the command opened. */
  private rollback(call: Call, snapshot: Call | null): void {
    const before = new Set<number>();
    if (snapshot) for (const id of allSockets(snapshot)) before.add(id);
    this.closeSockets(allSockets(call).filter((id) => !before.has(id)));
    if (snapshot) {
      Object.assign(call, snapshot);
      this.plane.install(callPlans(call));
    }
  }

  /** Returns the call's snapshot taken before the delete (rtpengine's delete reply), or null. */
  delete(opts: DeleteOptions): Promise<DeleteResult> {
    return this.exclusive(opts.callId, async () => {
      const call = this.calls.get(opts.callId);
      if (!call) return { found: false, snapshot: null };
      let target: Participant[] | null = null;
      if (opts.fromTag !== null) {
        const a = call.participants.find((p) => p.tag === opts.fromTag);
        if (!a) return { found: false, snapshot: null };
        if (opts.viaBranch !== null && opts.toTag === null) {
          // One fork only: its participant goes, the rest of the call stays.
          const forks = call.participants.filter((p) => p !== a && p.viaBranch === opts.viaBranch);
          const others = call.participants.filter((p) => p !== a && p.viaBranch !== opts.viaBranch);
          if (forks.length && others.length) target = forks;
        }
        if (opts.toTag !== null) {
          const b = call.participants.find((p) => p.tag === opts.toTag);
          if (!b) return { found: false, snapshot: null };
          // A losing fork (not the branch the caller is paired with) goes alone.
          if (b !== a && b.peerId === a.id && a.peerId !== b.id && !call.pending) target = [b];
        }
      }
      const snapshot = opts.fromTag !== null ? this.snapshot(call) : null;
      if (target) {
        this.removeParticipants(call, target);
        return { found: true, snapshot };
      }
      // A delete while a re-offer is pending is that re-offer's failure (Kamailio's
      // rtpengine_manage() deletes on a 4xx-6xx reply): back to the committed state, call kept.
      if (opts.rollback === 'only' && !call.pending) return { found: true, snapshot, nothingPending: true };
      if (call.pending && (opts.rollback === 'auto' || opts.rollback === 'only')) {
        this.rollbackPending(call, 'delete');
        call.lastSignalMs = this.clock.nowMs;
        return { found: true, snapshot, rolledBack: true };
      }
      const delayS = opts.deleteDelayS ?? this.cfg.timeouts.deleteDelayS;
      // The reply's snapshot is the call as it ends: taken once, not again for the call record.
      if (delayS <= 0) this.destroy(call, 'delete', snapshot);
      else {
        if (call.deleteAtMs === null) this.deleting++;
        call.deleteAtMs = this.clock.nowMs + delayS * 1000;
        call.deleteReason = 'delete';
      }
      return { found: true, snapshot };
    });
  }

  private removeParticipants(call: Call, gone: Participant[]): void {
    const ids = new Set(gone.map((p) => p.id));
    call.participants = call.participants.filter((p) => !ids.has(p.id));
    for (const p of call.participants) {
      if (p.peerId !== null && ids.has(p.peerId)) {
        p.peerId = call.participants.find((q) => q.peerId === p.id)?.id ?? null;
      }
    }
    this.plane.install(callPlans(call));
    this.closeSockets(socketIds(gone));
    this.log.info({ callId: call.callId, tags: gone.map((p) => p.tag), viaBranches: gone.map((p) => p.viaBranch) }, 'branch deleted');
  }

  /** Called with the call's last snapshot (counters included) when a call ends, for call records. */
  onCallEnded(listener: (snapshot: CallSnapshot, reason: string) => void): void {
    this.endedListeners.push(listener);
  }

  private destroy(call: Call, reason: string, taken: CallSnapshot | null = null): void {
    if (this.endedListeners.length) {
      const snap = taken ?? this.snapshot(call);
      for (const l of this.endedListeners) l(snap, reason);
    }
    // Before the sockets close: the recorder writes what is queued (and a worker still knows the call).
    this.finishRecording(call);
    this.closeSockets(allSockets(call));
    if (call.deleteAtMs !== null) this.deleting--;
    this.calls.delete(call.callId);
    this.ended[reason] = (this.ended[reason] ?? 0) + 1;
    this.log.info({ callId: call.callId, reason, durationMs: this.clock.nowMs - call.createdMs }, 'call ended');
  }

  query(opts: QueryOptions): CallSnapshot {
    const call = this.calls.get(opts.callId);
    if (!call) throw new SessionError('NO_CALL', 'unknown call-id');
    if (opts.fromTag !== null && !call.participants.some((p) => p.tag === opts.fromTag)) {
      throw new SessionError('NO_TAG', 'from-tag given, but no such tag exists');
    }
    return this.snapshot(call, opts.fromTag);
  }

  list(limit: number): string[] {
    return [...this.calls.keys()].slice(0, limit);
  }

  /** O(1): call threads send it with every turn's replies that changed it. */
  totals(): TableTotals {
    return { callsCreated: this.created, callsEnded: { ...this.ended }, current: this.calls.size, deleting: this.deleting };
  }

  /**
   * Packets, bytes and errors over every socket of the calls in the table, by kind, and the number
   * of sockets: for metrics and the dashboard, once a second or per scrape. Reads the plane's
   * counters directly rather than building a snapshot per call.
   */
  mediaTotals(): { rtp: { packets: number; bytes: number; errors: number }; rtcp: { packets: number; bytes: number; errors: number }; streams: number } {
    const out = { rtp: { packets: 0, bytes: 0, errors: 0 }, rtcp: { packets: 0, bytes: 0, errors: 0 }, streams: 0 };
    const ids: number[] = [];
    const rtcp: boolean[] = [];
    for (const call of this.calls.values()) {
      for (const p of call.participants) for (const m of p.medias) {
        if (!m?.local || isBundleMember(m)) continue;
        ids.push(m.local.rtp, m.local.rtcp); rtcp.push(false, true);
        if (m.localExtra) for (const l of m.localExtra) { ids.push(l.rtp, l.rtcp); rtcp.push(false, true); }
      }
    }
    if (this.plane.socketCounters) {
      // NaN marks a socket the plane does not know (closed meanwhile): it counts nowhere.
      const c = new Float64Array(ids.length * 3).fill(NaN);
      out.streams = this.plane.socketCounters(ids, c);
      for (let i = 0; i < ids.length; i++) {
        if (Number.isNaN(c[3 * i]!)) continue;
        const t = rtcp[i] ? out.rtcp : out.rtp;
        t.packets += c[3 * i]!; t.bytes += c[3 * i + 1]!; t.errors += c[3 * i + 2]!;
      }
      return out;
    }
    const rtcpIds = new Set<number>();
    for (let i = 0; i < ids.length; i++) if (rtcp[i]) rtcpIds.add(ids[i]!);
    for (const s of this.plane.stats(ids)) {
      const t = rtcpIds.has(s.id) ? out.rtcp : out.rtp;
      t.packets += s.packets; t.bytes += s.bytes; t.errors += s.errors;
      out.streams++;
    }
    return out;
  }

  snapshot(call: Call, onlyTag: string | null = null): CallSnapshot {
    const ids = allSockets(call);
    const leg = legOf(call);
    const stats = new Map<number, SocketStats>(this.plane.stats(ids).map((s) => [s.id, s]));
    const totals = { rtp: { packets: 0, bytes: 0, errors: 0 }, rtcp: { packets: 0, bytes: 0, errors: 0 } };
    const tagOf = (id: number | null): string[] => {
      const p = id === null ? undefined : call.participants.find((q) => q.id === id);
      return p ? [p.tag] : [];
    };
    const stream = (m: MediaState, kind: 'rtp' | 'rtcp'): StreamSnapshot => {
      const id = m.local ? (kind === 'rtp' ? m.local.rtp : m.local.rtcp) : null;
      const st = id === null ? undefined : stats.get(id);
      // A BUNDLE member shares its owner's socket: the socket's counters and quality are shown
      // (and totalled) once, on the owner; the member shows its port, endpoint and state.
      const shared = isBundleMember(m);
      const packets = shared ? 0 : st?.packets ?? 0, bytes = shared ? 0 : st?.bytes ?? 0, errors = shared ? 0 : st?.errors ?? 0;
      const t = kind === 'rtp' ? totals.rtp : totals.rtcp;
      t.packets += packets; t.bytes += bytes; t.errors += errors;
      const muxed = kind === 'rtcp' && m.rtcpMux;
      return {
        kind,
        local: m.local ? { address: m.local.address, port: muxed ? 0 : kind === 'rtp' ? m.local.port : m.local.port + 1, family: m.local.family } : null,
        endpoint: st?.remote ?? (kind === 'rtp' ? m.remoteRtp : m.remoteRtcp),
        advertised: kind === 'rtp' ? m.remoteRtp : m.remoteRtcp,
        confirmed: st?.confirmed ?? false,
        // Plain literal, no spread of a counters object (the delete reply builds four of these).
        stats: { packets, bytes, errors, dropped: shared ? 0 : st?.dropped ?? 0, lastPacketMs: st?.lastPacketMs ?? 0 },
        ssrc: shared ? null : st?.ssrc ?? null,
        quality: kind === 'rtp' && !shared ? st?.quality ?? null : null,
        rtcpMuxed: muxed,
        leg: id === null ? 'committed' : leg(id),
      };
    };
    const old = oldLegs(call);
    const participants = call.participants
      .filter((p) => onlyTag === null || p.tag === onlyTag || call.participants.find((q) => q.tag === onlyTag)?.peerId === p.id)
      .map((p): ParticipantSnapshot => ({
        tag: p.tag, viaBranch: p.viaBranch, label: p.label, createdMs: p.createdMs, peers: tagOf(p.peerId),
        medias: p.medias.filter((m) => m !== undefined).map((m) => ({
          index: m.index, type: m.type, protocol: m.protocol, direction: m.direction, rtcpMux: m.rtcpMux,
          asymmetric: p.flags.asymmetric, strictSource: p.flags.strictSource, mediaHandover: p.flags.mediaHandover,
          initialized: m.remoteRtp !== null,
          streams: [stream(m, 'rtp'), stream(m, 'rtcp')],
          oldStreams: old.filter((o) => o.participantTag === p.tag && o.mediaIndex === m.index).flatMap((o) => {
            const cm = call.pending!.committed.find((q) => q.tag === p.tag)!.medias[m.index - 1]!;
            return [{ ...stream(cm, 'rtp'), leg: 'committed' as const }, { ...stream(cm, 'rtcp'), leg: 'committed' as const }];
          }),
        })),
      }));
    // Totals cover the whole call, whichever participants are shown.
    if (onlyTag !== null) for (const p of call.participants) if (!participants.some((x) => x.tag === p.tag)) {
      for (const m of p.medias) if (m) { stream(m, 'rtp'); stream(m, 'rtcp'); }
    }
    const pending = call.pending ? { offererTag: call.pending.offererTag, sinceMs: call.pending.sinceMs } : null;
    const r = call.recording;
    const recording = r ? { state: r.state, metadata: r.metadata, files: this.recordingFiles(call.callId), error: r.error } : null;
    return { callId: call.callId, createdMs: call.createdMs, lastSignalMs: call.lastSignalMs, participants, totals, pending, recording };
  }

  /**
   * The once-a-second sweep: delayed deletes, offer timeout, media timeout, final timeout.
   * `nowMs` is passed in so tests drive it without waiting.
   */
  sweep(nowMs: number): void {
    for (const call of [...this.calls.values()]) this.sweepCall(call, nowMs);
  }

  /**
   * The sliced sweep's pass (sweepPart): the calls as they were when it began, where it is, and
   * calls per slice; null: a new pass starts. A plain array, not a Map iterator kept across
   * ticks: a live iterator keeps V8's obsolete hash tables, and every call deleted since, alive
   * (the soak's heap grew ~20 MiB a minute under churn).
   */
  private sweepList: Call[] | null = null;
  private sweepAt = 0;
  private sweepSlice = 0;

  /**
   * One of `parts` slices of a sweep: the next calls of the pass, a `parts`-th of the table as it
   * was when the pass began, from where the previous slice stopped (calls deleted meanwhile are
   * skipped, calls added meanwhile wait for the next pass). Run `parts` times a second, every call is checked
   * about once a second as by sweep(), but no timer tick holds the main thread, and every NG
   * command waiting behind it, for a whole pass (1-4 ms per 1000 calls on the busy 2-core VM).
   */
  sweepPart(nowMs: number, parts: number): void {
    for (let restarts = 0, budget = -1; ;) {
      if (this.sweepList === null) {
        if (restarts++ > 0) return; // the table went round once in this slice already
        this.sweepList = [...this.calls.values()];
        this.sweepAt = 0;
        // At least one a slice: a pass over an empty table must end too, or the sweep would stay
        // on that empty list for good (a daemon that started idle never timed a call out).
        this.sweepSlice = Math.max(1, Math.ceil(this.sweepList.length / parts));
      }
      if (this.sweepAt >= this.sweepList.length) { this.sweepList = null; continue; }
      if (budget < 0) budget = this.sweepSlice;
      if (budget === 0) return;
      const call = this.sweepList[this.sweepAt++]!;
      budget--;
      if (this.calls.get(call.callId) === call) this.sweepCall(call, nowMs);
    }
  }

  private sweepCall(call: Call, nowMs: number): void {
    const t = this.cfg.timeouts;
    if (call.retiring?.length) {
      const due = call.retiring.filter((r) => r.atMs <= nowMs);
      call.retiring = call.retiring.filter((r) => r.atMs > nowMs);
      this.closeSockets(due.flatMap((r) => [r.rtp, r.rtcp]));
    }
    // An unanswered re-offer times out into the committed state, not the end of the call.
    if (call.pending && call.deleteAtMs === null && t.offerTimeoutS > 0 && nowMs - call.pending.sinceMs >= t.offerTimeoutS * 1000) {
      this.rollbackPending(call, 'offer-timeout');
    }
    if (call.deleteAtMs !== null) {
      if (call.deleteAtMs <= nowMs) this.destroy(call, call.deleteReason ?? 'delete');
      return;
    }
    if (t.finalTimeoutS > 0 && nowMs - call.createdMs >= t.finalTimeoutS * 1000) { this.destroy(call, 'final-timeout'); return; }
    if (call.answeredMs === null) {
      if (t.offerTimeoutS > 0 && nowMs - call.lastSignalMs >= t.offerTimeoutS * 1000) this.destroy(call, 'offer-timeout');
      return;
    }
    // RTCP counts as media too (rtpengine's timeout is "no RTP or RTCP").
    // Plain loops: the nested flatMap here made a sweep of 900 answered calls take 6-9 ms of
    // the main thread once a second (every NG command waits behind it); now well under 1 ms.
    const ids: number[] = [];
    for (const p of call.participants) {
      for (const m of p.medias) {
        if (!m?.local || m.rejected) continue;
        ids.push(m.local.rtp, m.local.rtcp);
        if (m.localExtra) for (const l of m.localExtra) ids.push(l.rtp, l.rtcp);
      }
    }
    let last = Math.max(call.answeredMs, call.lastSignalMs);
    if (this.plane.latestPacketMs) last = Math.max(last, this.plane.latestPacketMs(ids));
    else for (const s of this.plane.stats(ids)) if (s.lastPacketMs > last) last = s.lastPacketMs;
    const onHold = call.participants.every((p) => p.medias.every((m) => !m || m.rejected || m.direction !== 'sendrecv'));
    const limitS = onHold ? t.silentTimeoutS : t.timeoutS;
    if (limitS > 0 && nowMs - last >= limitS * 1000) this.destroy(call, onHold ? 'silent-timeout' : 'timeout');
  }



  // ---------------------------------------------------------------------------------------------
  // Call recording. The plane records (one recorder per call, beside its sockets); the session
  // decides when, names the files, and tells the plane which socket carries which party's stream.

  /** Called when a recording's files are closed (call end, stop recording, or a file error). */
  onRecordingDone(listener: (r: RecordingDone) => void): void {
    this.recordingListeners.push(listener);
  }

  /** The pcap path(s) of the call's current recording, as rtpengine lists them in replies. */
  recordingFiles(callId: string): string[] {
    const r = this.calls.get(callId)?.recording;
    return r ? [join(r.dir, `${r.stem}.pcap`)] : [];
  }

  /** Which socket carries which party's stream, with the codecs of its SDP. */
  private recordingStreams(call: Call): RecordingStream[] {
    const out: RecordingStream[] = [];
    for (const p of call.participants) {
      // An answerer without a tag yet is added when the answer names it: the recorder names its
      // WAV party after the first tag it sees. (Early media before the answer is not recorded.)
      if (p.tag === '') continue;
      const peer = call.participants.find((q) => q.id === p.peerId);
      const codecsOf = (sdp: string | null, index: number): Record<number, string> => {
        const map: Record<number, string> = {};
        if (sdp === null) return map;
        try {
          const info = mediaInfo(parseSdp(sdp), sdp)[index - 1];
          for (const c of info?.codecs ?? []) if (c.encoding !== null) map[c.pt] = c.encoding;
        } catch { /* an SDP we accepted parses; be safe anyway */ }
        return map;
      };
      for (const m of p.medias) {
        if (!m?.local || m.rejected || m.type !== 'audio' && m.type !== 'video' || isBundleMember(m)) continue;
        // The party sends with the payload types of either SDP; its own rtpmap wins. A BUNDLE
        // socket is recorded once, with the codecs of every media it carries (unique payload types).
        const carried = m.bundleOwner === m.index ? p.medias.filter((x) => x?.bundleOwner === m.index && !x.rejected) : [m];
        const codecs: Record<number, string> = {};
        for (const x of carried) Object.assign(codecs, codecsOf(peer?.sdpIn ?? null, x.index), codecsOf(p.sdpIn, x.index));
        for (const x of carried) for (const pt of x.payloadTypes) if (codecs[pt] === undefined && STATIC_PAYLOAD_TYPES[pt]) codecs[pt] = STATIC_PAYLOAD_TYPES[pt]!;
        const tag = p.tag;
        out.push({ id: m.local.rtp, tag, kind: 'rtp', src: m.remoteRtp, dst: { address: m.local.address, port: m.local.port }, codecs });
        if (!m.rtcpMux) out.push({ id: m.local.rtcp, tag, kind: 'rtcp', src: m.remoteRtcp, dst: { address: m.local.address, port: m.local.port + 1 }, codecs: {} });
      }
    }
    return out;
  }

  /** Starts (or resumes) the call's recording; false when there is nowhere to record to. */
  private beginRecording(call: Call, metadata: string | null): boolean {
    const dir = this.cfg.recording?.dir ?? null;
    if (dir === null) {
      // rtpengine 10.5 replies ok and logs an error.
      this.log.error({ callId: call.callId }, 'recording requested, but no --recording-dir');
      return false;
    }
    const r = call.recording;
    if (r && r.state === 'paused') {
      r.state = 'recording';
      this.plane.resumeRecording?.(call.callId);
      return true;
    }
    if (r && r.state === 'recording') return true;
    const startedMs = Date.now();
    call.recording = { state: 'recording', dir, stem: fileStem(call.callId, startedMs), metadata: metadata ?? r?.metadata ?? '', startedMs, error: null };
    this.plane.startRecording?.({
      group: call.callId, callId: call.callId, dir, stem: call.recording.stem, metadata: call.recording.metadata,
      streams: this.recordingStreams(call),
    });
    this.log.info({ callId: call.callId, stem: call.recording.stem }, 'recording started');
    return true;
  }

  /** After offer/answer: `record-call` on/off, and the (possibly new) streams of a recorded call. */
  private syncRecording(call: Call, opts: OfferAnswerOptions): void {
    if (opts.metadata != null && call.recording) call.recording.metadata = opts.metadata;
    if (opts.recordCall === true) this.beginRecording(call, opts.metadata ?? null);
    else if (opts.recordCall === false) this.finishRecording(call);
    const r = call.recording;
    if (r && opts.recordCall !== true && (r.state === 'recording' || r.state === 'paused')) {
      this.plane.updateRecording?.(call.callId, this.recordingStreams(call));
    }
  }

  /** Stops the call's recording; the files are reported to `onRecordingDone` once closed. */
  private finishRecording(call: Call): void {
    const r = call.recording;
    if (!r || r.state === 'stopped') return;
    const failed = r.state === 'failed';
    r.state = 'stopped';
    const stop = this.plane.stopRecording?.(call.callId) ?? Promise.resolve([]);
    void stop.then((files) => {
      const done: RecordingDone = { callId: call.callId, metadata: r.metadata, startedMs: r.startedMs, endedMs: Date.now(), files, error: failed ? r.error : null };
      this.log.info({ callId: call.callId, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) }, 'recording stopped');
      for (const l of this.recordingListeners) l(done);
    }, (err: Error) => this.log.error({ callId: call.callId, err: err.message }, 'recording stop failed'));
  }

  private recordingFailed(group: string, error: string): void {
    this.recordingFailures++;
    const r = this.calls.get(group)?.recording;
    if (r && r.state !== 'stopped') { r.state = 'failed'; r.error = error; }
  }

  /** NG `start recording`: records the whole call (rtpengine 10.5 ignores the participant keys). */
  async startRecording(opts: RecordingOptions): Promise<void> {
    return this.exclusive(opts.callId, async () => {
      const call = this.liveCall(opts.callId);
      if (opts.metadata !== null && call.recording) call.recording.metadata = opts.metadata;
      this.beginRecording(call, opts.metadata);
    });
  }

  /** NG `stop recording`: closes the files; a later `start recording` makes new ones. */
  async stopRecording(opts: RecordingOptions): Promise<void> {
    return this.exclusive(opts.callId, async () => { this.finishRecording(this.liveCall(opts.callId)); });
  }

  /** NG `pause recording`: nothing is recorded until `start recording`; the audio files skip the pause. */
  async pauseRecording(opts: RecordingOptions): Promise<void> {
    return this.exclusive(opts.callId, async () => {
      const r = this.liveCall(opts.callId).recording;
      if (r?.state !== 'recording') return;
      r.state = 'paused';
      this.plane.pauseRecording?.(opts.callId);
    });
  }

  private liveCall(callId: string): Call {
    const call = this.calls.get(callId);
    if (!call) throw new SessionError('NO_CALL', 'unknown call-id');
    return call;
  }

  /** Ends every call at once (shutdown). */
  destroyAll(reason: string): void {
    for (const call of [...this.calls.values()]) this.destroy(call, reason);
  }
}


function socketsOf(call: Call): number[] {
  return allSockets(call);
}
