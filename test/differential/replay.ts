// Replays a differential scenario against any NG daemon (rtpengine when recording, rtprelay in
// the test) and normalises the replies, so that only what must be equal is compared: port
// numbers and random tokens become placeholders, mapped consistently within one scenario so
// that "the same port again" and "RTCP = RTP + 1" stay visible.
import type { NgValue } from '../../control/codec.js';
import type { Plain } from '../support/ng-client.js';
import type { Scenario } from './scenarios.js';

export type SendFn = (dict: Record<string, NgValue>) => Promise<Record<string, Plain>>;

/** One normalised reply: the SDP as lines (diffs stay readable), plus result and reasons. */
export interface NormalReply {
  result: string;
  sdp?: string[];
  'error-reason'?: string;
  warning?: string;
}

export interface PortRange { min: number; max: number }

class Normaliser {
  private readonly ports = new Map<string, string>();
  private portCount = 0;
  private readonly tokens = new Map<string, string>();
  private readonly counters = new Map<string, number>();

  /** `known`: every token that appears in some request SDP; those came from the peer, not the daemon. */
  constructor(private readonly range: PortRange, private readonly known: ReadonlySet<string>) {}

  /**
   * Ports are sockets, so they are told apart per local address (rtpengine keeps one pool per
   * address; the same number on two addresses is two sockets). A port one above a labelled
   * port prints as that label +1, which keeps "a=rtcp is RTP + 1" visible without assuming
   * that RTP ports are even (a mux-only socket need not be).
   */
  port(text: string, address: string): string {
    const p = Number(text);
    if (!(p >= this.range.min && p <= this.range.max)) return text;
    const key = (q: number): string => `${address} ${q}`;
    let label = this.ports.get(key(p));
    if (label === undefined) {
      const below = this.ports.get(key(p - 1));
      label = below !== undefined && !below.includes('+') ? below.replace('}', '+1}') : `{PORT${++this.portCount}}`;
      this.ports.set(key(p), label);
    }
    return label;
  }

  token(kind: string, value: string): string {
    if (this.known.has(value)) return value;
    let label = this.tokens.get(`${kind}:${value}`);
    if (label === undefined) {
      const n = (this.counters.get(kind) ?? 0) + 1;
      this.counters.set(kind, n);
      label = `{${kind}${n}}`;
      this.tokens.set(`${kind}:${value}`, label);
    }
    return label;
  }

  /** Normalises one SDP body; each section's ports are keyed by the address it advertises. */
  sdp(lines: string[]): string[] {
    const sections: string[][] = [[]];
    for (const l of lines) { if (l.startsWith('m=')) sections.push([]); sections[sections.length - 1]!.push(l); }
    const connOf = (sec: string[]): string | undefined => sec.find((l) => l.startsWith('c='))?.split(' ')[2];
    const sessionAddr = connOf(sections[0]!) ?? '';
    return sections.flatMap((sec) => {
      const addr = connOf(sec) ?? sessionAddr;
      return sec.map((l) => this.line(l, addr));
    });
  }

  private line(l: string, addr: string): string {
    let m: RegExpExecArray | null;
    if ((m = /^m=(\S+) (\d+)(.*)$/.exec(l))) return `m=${m[1]} ${this.port(m[2]!, addr)}${m[3]}`;
    if ((m = /^a=rtcp:(\d+)(?: IN IP[46] (\S+))?(.*)$/.exec(l))) {
      return `a=rtcp:${this.port(m[1]!, m[2] ?? addr)}${m[2] ? ` IN ${l.includes('IP6') ? 'IP6' : 'IP4'} ${m[2]}` : ''}${m[3]}`;
    }
    if ((m = /^a=ice-ufrag:(.*)$/.exec(l))) return `a=ice-ufrag:${this.token('UFRAG', m[1]!)}`;
    if ((m = /^a=ice-pwd:(.*)$/.exec(l))) return `a=ice-pwd:${this.token('PWD', m[1]!)}`;
    if ((m = /^a=rtpengine:(.*)$/.exec(l))) return `a=rtpengine:${this.token('LOOPID', m[1]!)}`;
    // SDES keys and DTLS fingerprints are random per daemon; their length and hash name are not.
    if ((m = /^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)(.*)$/.exec(l))) {
      return `a=crypto:${m[1]} ${m[2]} inline:${this.token('KEY', m[3]!)}(${m[3]!.length})${m[4]}`;
    }
    if ((m = /^a=fingerprint:(\S+) (\S+)$/.exec(l))) return `a=fingerprint:${m[1]} ${this.token('FP', m[2]!)}(${m[2]!.length})`;
    if ((m = /^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) (.*)$/.exec(l))) {
      const rest = m[7]!.replace(/raddr (\S+) rport (\d+)/, (_, a: string, p: string) => `raddr ${a} rport ${this.port(p, a)}`);
      return `a=candidate:${this.token('FOUNDATION', m[1]!)} ${m[2]} ${m[3]} ${m[4]} ${m[5]} ${this.port(m[6]!, m[5]!)} ${rest}`;
    }
    return l;
  }
}

function knownTokens(s: Scenario): Set<string> {
  const known = new Set<string>();
  for (const step of s.steps) {
    const sdp = step.sdp;
    if (typeof sdp !== 'string') continue;
    for (const l of sdp.split(/\r?\n/)) {
      const m = /^a=(?:ice-ufrag|ice-pwd|rtpengine):(.*)$/.exec(l) ?? /^a=candidate:(\S+)/.exec(l)
        ?? /^a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)/.exec(l) ?? /^a=fingerprint:\S+ (\S+)$/.exec(l);
      if (m) known.add(m[1]!);
    }
  }
  return known;
}

function normalise(n: Normaliser, reply: Record<string, Plain>): NormalReply {
  const out: NormalReply = { result: String(reply.result) };
  if (typeof reply.sdp === 'string') {
    const lines = reply.sdp.split('\r\n');
    // A body must end in CRLF; keep a visible marker if it does not, rather than hiding it.
    if (lines[lines.length - 1] === '') lines.pop(); else lines.push('<no final CRLF>');
    out.sdp = n.sdp(lines);
  }
  if (reply['error-reason'] !== undefined) out['error-reason'] = String(reply['error-reason']);
  if (reply.warning !== undefined) out.warning = String(reply.warning);
  return out;
}

/** `sdp: { 'from-reply': N }` sends the SDP that step N got back (a signalling loop). */
function loopedSdp(step: Record<string, NgValue>, raw: Record<string, Plain>[]): { sdp?: string } {
  const ref = step.sdp;
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref) || Buffer.isBuffer(ref)) return {};
  const sdp = raw[Number(ref['from-reply'])]?.sdp;
  if (typeof sdp !== 'string') throw new Error(`step refers to reply ${String(ref['from-reply'])}, which has no SDP`);
  return { sdp };
}

/** Sends every step with the scenario's call-id; resolves with the normalised replies. */
export async function replay(s: Scenario, send: SendFn, range: PortRange, callId: string): Promise<NormalReply[]> {
  const n = new Normaliser(range, knownTokens(s));
  const out: NormalReply[] = [];
  const raw: Record<string, Plain>[] = [];
  for (const step of s.steps) {
    const reply = await send({ 'call-id': callId, ...step, ...loopedSdp(step, raw) });
    raw.push(reply);
    out.push(normalise(n, reply));
  }
  // Not compared: frees the call so a recorder run can go on with the same daemon.
  await send({ command: 'delete', 'call-id': callId, 'delete-delay': 0 });
  return out;
}

/**
 * Renumbers every {KINDn} placeholder in order of first appearance, so that dropping a line
 * (allow-list) does not shift the labels of everything after it.
 */
export function renumber(replies: NormalReply[]): NormalReply[] {
  const seen = new Map<string, string>();
  const counts = new Map<string, number>();
  const fix = (l: string): string => l.replace(/\{([A-Z]+)(\d+)(\+1)?\}/g, (_, kind: string, n: string, plus = '') => {
    let label = seen.get(kind + n);
    if (label === undefined) {
      const c = (counts.get(kind) ?? 0) + 1;
      counts.set(kind, c);
      label = `${kind}${c}`;
      seen.set(kind + n, label);
    }
    return `{${label}${plus}}`;
  });
  return replies.map((r) => (r.sdp ? { ...r, sdp: r.sdp.map(fix) } : r));
}

/** Replies left out of the comparison by the allow-list (`skip`), on either side. */
export function withoutSkipped(s: Scenario, replies: NormalReply[]): NormalReply[] {
  const skip = new Set((s.allow ?? []).filter((a) => 'skip' in a).map((a) => a.step));
  return replies.map((r, i) => (skip.has(i) ? { result: '(not compared: allow-listed)' } : r));
}

/** Applies a scenario's allow-list to the recorded rtpengine replies: what we deliberately do instead. */
export function applyAllowList(s: Scenario, expected: NormalReply[]): NormalReply[] {
  const copy = withoutSkipped(s, structuredClone(expected));
  for (const a of s.allow ?? []) {
    if ('skip' in a) continue;
    const r = copy[a.step];
    if (!r?.sdp) throw new Error(`${s.name}: allow-list entry "${a.why}" names step ${a.step}, which has no SDP`);
    if ('insert' in a) {
      const at = r.sdp.findIndex((l) => a.after.test(l));
      if (at < 0) throw new Error(`${s.name}: allow-list entry "${a.why}" matched nothing (stale?)`);
      r.sdp.splice(at + 1, 0, ...a.insert);
      continue;
    }
    const before = r.sdp.join('\n');
    r.sdp = r.sdp.flatMap((l) => (a.match.test(l) ? (a.replace === null ? [] : [l.replace(a.match, a.replace)]) : [l]));
    if (r.sdp.join('\n') === before) throw new Error(`${s.name}: allow-list entry "${a.why}" matched nothing (stale?)`);
  }
  return renumber(copy);
}
