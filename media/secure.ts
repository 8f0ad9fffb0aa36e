// The WebRTC side of one relay socket: SRTP contexts (SDES from the plan, or DTLS-SRTP once the
// handshake is done), the ICE agent, the DTLS endpoint, and whether the party takes RTCP feedback.
// The relay owns the sockets and wires the callbacks; this holds state and the per-packet steps.
// Imports only media/.
import { rxFailures, sdesPair, stripFeedback, type SrtpPair } from './transform.js';
import type { IceAgent } from './ice/agent.js';
import type { DtlsEndpoint } from './dtls/endpoint.js';
import type { SocketCrypto, SocketPlan } from './plane.js';

export class SocketSecurity {
  /** Keys in use; null while none (DTLS not done, or unusable SDES keys). */
  srtp: SrtpPair | null = null;
  /** SRTP is required on this socket: without keys nothing passes either way. */
  readonly secure: boolean;
  rtcpFeedback: boolean;
  generateRtcp: boolean;
  ice: IceAgent | null = null;
  dtls: DtlsEndpoint | null = null;
  dtlsFailed = false;
  /** Failures of contexts replaced since (a re-keyed stream keeps its count). */
  private pastFailures = 0;

  constructor(readonly crypto: SocketCrypto | null, plan: SocketPlan) {
    this.secure = crypto !== null && (crypto.sdes !== null || crypto.dtls !== null);
    this.rtcpFeedback = plan.rtcpFeedback !== false;
    this.generateRtcp = plan.generateRtcp === true;
    if (crypto?.sdes) this.srtp = sdesPair(crypto).pair;
  }

  /** Whether a plan needs a SocketSecurity at all (a plain RTP/AVP stream with feedback allowed does not). */
  static needed(p: SocketPlan): boolean {
    return !!(p.crypto && (p.crypto.sdes || p.crypto.dtls)) || !!p.ice || p.rtcpFeedback === false || p.generateRtcp === true;
  }

  setKeys(pair: SrtpPair): void {
    if (this.srtp !== null) this.pastFailures += rxFailures(this.srtp.rx);
    this.srtp = pair;
  }

  /** SRTP packets dropped on receipt: failed authentication, replayed, malformed. */
  failures(): number {
    return this.pastFailures + (this.srtp === null ? 0 : rxFailures(this.srtp.rx));
  }

  /** What the party sent, decrypted; null: drop (counted in the context's failures, or no keys yet). */
  inbound(buf: Buffer, isRtcp: boolean): Buffer | null {
    if (!this.secure) return buf;
    const k = this.srtp;
    if (k === null) return null;
    return isRtcp ? k.rx.unprotectRtcp(buf) : k.rx.unprotectRtp(buf);
  }

  /** What goes to the party: feedback removed when it takes none, then encrypted; null: drop. */
  outbound(buf: Buffer, isRtcp: boolean): Buffer | null {
    let out: Buffer | null = buf;
    if (isRtcp && !this.rtcpFeedback) {
      out = stripFeedback(buf);
      if (out === null) return null;
    }
    if (!this.secure) return out;
    const k = this.srtp;
    if (k === null) return null;
    return isRtcp ? k.tx.protectRtcp(out) : k.tx.protectRtp(out);
  }

  close(): void {
    this.ice?.close();
    this.dtls?.close();
  }
}
