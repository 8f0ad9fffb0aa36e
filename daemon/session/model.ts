// The session state: plain data only (no sockets, timers or class instances), so that a call
// can be written to a store and read back by another instance. Socket ids refer to the media
// plane, which owns the sockets.
import type { Direction } from './sdp.js';
import type { IceCredentials, IceMode } from './rewrite.js';

export interface Endpoint { address: string; port: number }

/** Our sockets facing one party for one media section, on one local address. */
export interface LocalPair {
  address: string;
  /** Written into SDP (interface's advertised address, or `media-address`). */
  advertised: string;
  family: 4 | 6;
  port: number;
  rtp: number;
  rtcp: number;
}

export interface MediaState {
  index: number;
  type: string;
  protocol: string;
  /** Where the party receives RTP/RTCP according to its SDP (or received-from); null: not known yet. */
  remoteRtp: Endpoint | null;
  remoteRtcp: Endpoint | null;
  /** Our sockets that this party sends to; null when the media is rejected or disabled. */
  local: LocalPair | null;
  direction: Direction;
  rtcpMux: boolean;
  /** The offer that created this media asked `rtcp-mux: [reject]`: the answer must not accept mux back. */
  rtcpMuxReject?: boolean;
  /** Payload types this party offered or answered. */
  payloadTypes: number[];
  /** The party's SDP had port 0 for this section. */
  rejected: boolean;
  mid: string | null;
  ice: IceCredentials | null;
  foundation: string | null;
  // --- WebRTC (webrtc.ts): all optional so that stored calls from before still load ---------
  /** Our sockets on the interface's other addresses, opened for ICE (one host candidate each). */
  localExtra?: LocalPair[];
  /** We wrote ICE (our credentials and candidates) in the last SDP sent to this party. */
  iceUsed?: boolean;
  /** We are the controlling ICE agent towards this party (RFC 8445 6.1.1). */
  iceControlling?: boolean;
  /** We are ICE-lite towards this party (ICE-lite forward/backward/both). */
  iceLite?: boolean;
  /** What this party's SDP said about its ICE (credentials, candidates, a=ice-lite). */
  remoteIce?: RemoteIce | null;
  /** a=crypto values this party wrote, and the ones we wrote to it (tags as written). */
  cryptoIn?: string[];
  cryptoOut?: string[];
  /** Negotiated SDES: the party's line (it encrypts with it) and ours towards it; null: no SDES. */
  sdes?: { rx: string; tx: string } | null;
  /** SRTP passes through unchanged between this party and its peer (same SDES line both ways). */
  srtpPassthrough?: boolean;
  /** This party's a=fingerprint and a=setup. */
  remoteFingerprint?: { hash: string; value: string } | null;
  remoteSetup?: string | null;
  /** Our DTLS towards this party: the a=setup we wrote, and the fingerprint hash (fixed once chosen). */
  dtlsSetup?: 'actpass' | 'active' | 'passive' | null;
  dtlsHash?: string;
  /** SDES-no-<suite> given with the offer: also excluded from our answer to the offerer. */
  sdesNo?: string[];
  /** DTLS-reverse given with the offer that created this media: our role towards the offerer. */
  dtlsReverse?: 'active' | 'passive' | null;
  /** The party takes RTCP feedback (AVPF, or a=rtcp-fb in its SDP). */
  rtcpFeedback?: boolean;
  /** generate-RTCP asked for this media. */
  generateRtcp?: boolean;
  /**
   * BUNDLE (bundle.ts): the 1-based index of the media whose sockets carry this one towards the
   * party (its own index on the owner). A member's `local`, `localExtra` and `ice` are the owner's:
   * it owns no sockets. Absent/null: not bundled.
   */
  bundleOwner?: number | null;
  /** SSRCs this party announced (a=ssrc), for routing RTCP on a BUNDLE socket. */
  ssrcs?: number[];
  /** Payload types and RTP clock rates (Hz) of the codecs this party's SDP names, as media/plane.ts's ClockRates pairs. */
  clockRates?: number[];
}

export interface RemoteIce {
  ufrag: string | null;
  pwd: string | null;
  lite: boolean;
  candidates: { foundation: string; component: 1 | 2; priority: number; address: string; port: number; type: 'host' | 'srflx' | 'prflx' | 'relay' }[];
}

export interface ParticipantFlags {
  asymmetric: boolean;
  strictSource: boolean;
  mediaHandover: boolean;
  portLatching: boolean;
}

export interface Participant {
  /** Stable within the call; references between participants use it. */
  id: number;
  /** SIP tag; '' until an answer names it. */
  tag: string;
  viaBranch: string | null;
  label: string | null;
  createdMs: number;
  interfaceName: string;
  /** The participant this one exchanges media with, or null. */
  peerId: number | null;
  medias: MediaState[];
  flags: ParticipantFlags;
  /** The last SDP this party sent us, and the SDP we wrote to the other side for it. */
  sdpIn: string | null;
  sdpOut: string | null;
  /** o= version we write towards this party's peer (replace SDP-version). */
  originVersion: number | null;
  /** o= username and s= we keep stable towards the peer (replace username / session-name). */
  originUsername: string | null;
  sessionName: string | null;
}

export interface Call {
  callId: string;
  createdMs: number;
  lastSignalMs: number;
  /** Set when the first answer arrived. */
  answeredMs: number | null;
  participants: Participant[];
  nextParticipantId: number;
  /** When a delayed delete takes effect; null while the call is live. */
  deleteAtMs: number | null;
  /** Why it is being deleted (logged and counted). */
  deleteReason: string | null;
  /** A re-offer on the established dialogue that has not been answered yet (see dialogue.ts). */
  pending?: PendingOffer | null;
  /** Sockets of replaced legs: they no longer relay and close at `atMs` (delete-delay). */
  retiring?: RetiringPair[];
  /** Call recording, once asked for (record-call, start recording); absent/null: never recorded. */
  recording?: RecordingState | null;
}

/** A call's recording (the media plane writes the files; see media/recording-hub.ts). */
export interface RecordingState {
  state: 'recording' | 'paused' | 'stopped' | 'failed';
  dir: string;
  /** File name stem: the files are STEM.pcap, STEM-N.wav, STEM-mix.wav, STEM.json. */
  stem: string;
  metadata: string;
  startedMs: number;
  error: string | null;
}

/**
 * A re-offer in flight. `committed` is the participants as the last completed offer/answer
 * left them: the answer drops it (commit), a failure puts it back (rollback). Its sockets that
 * the re-offer replaced stay open and keep relaying until then.
 */
export interface PendingOffer {
  committed: Participant[];
  /** Tag of the party that sent the re-offer. */
  offererTag: string;
  sinceMs: number;
}

export interface RetiringPair { rtp: number; rtcp: number; atMs: number }

/** Everything offer and answer take, already typed (control/params.ts maps NG keys onto it). */
export interface OfferAnswerOptions {
  callId: string;
  fromTag: string;
  toTag: string | null;
  viaBranch: string | null;
  sdp: string;
  flags: ReadonlySet<string>;
  replace: ReadonlySet<string>;
  /** direction: [interface facing the offerer, interface facing the answerer]. */
  interfaces: [string | null, string | null];
  receivedFrom: { family: 4 | 6; address: string } | null;
  mediaAddress: string | null;
  addressFamily: 4 | 6 | null;
  ice: IceMode;
  rtcpMux: ReadonlySet<string>;
  transportProtocol: string | null;
  codec: { strip: string[]; except: string[]; offer: string[]; mask: string[]; transcode: string[] };
  ptime: number | null;
  label: string | null;
  /** WebRTC keys (DTLS, SDES, OSRTP, ICE-lite, generate RTCP); absent: rtpengine's defaults. */
  webrtc?: WebrtcOptions;
  /** `record call` / `record-call`: true turns recording on, false off; absent/null: unchanged. */
  recordCall?: boolean | null;
  /** Recording metadata (NG `metadata`), stored with the recording. */
  metadata?: string | null;
}

/** `start recording` / `stop recording` / `pause recording`. */
export interface RecordingOptions { callId: string; metadata: string | null }

/** NG `DTLS`, `DTLS-reverse`, `DTLS-fingerprint`, `SDES`, `OSRTP`, `ICE-lite`, `generate RTCP`. */
export interface WebrtcOptions {
  dtls: 'default' | 'off' | 'passive' | 'active';
  dtlsReverse: 'passive' | 'active' | null;
  /** sha-1, sha-224, sha-256, sha-384, sha-512 (lower case); null: sha-256, or what the media has. */
  dtlsFingerprint: string | null;
  sdesOff: boolean;
  /** SDES-no-<suite>, SDES-only-<suite> (10.5 ignores `only`; so do we, see webrtc.ts). */
  sdesNo: string[];
  sdesOnly: string[];
  sdesPad: boolean;
  sdesLifetime: boolean;
  /** UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP asked for in our offers. */
  sdesParams: string[];
  osrtpOffer: boolean;
  osrtpAccept: boolean;
  iceLite: 'off' | 'forward' | 'backward' | 'both';
  /** true/false: generate RTCP on/off; null: not given. */
  generateRtcp: boolean | null;
}

export interface DeleteOptions {
  callId: string;
  fromTag: string | null;
  toTag: string | null;
  viaBranch: string | null;
  fatal: boolean;
  /**
   * What to do with a re-offer pending on an established dialogue: `auto` rolls it back (the
   * first delete after a re-offer is its failure), `only` rolls back and never ends the call,
   * `never` (and leaving it out, as operator actions do) ends the call whatever is pending.
   */
  rollback?: 'auto' | 'only' | 'never';
  /** Seconds; null: the daemon's --delete-delay. */
  deleteDelayS: number | null;
}

export interface QueryOptions { callId: string; fromTag: string | null; toTag: string | null }
