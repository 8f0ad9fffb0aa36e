// The media plane's interface: plain, serializable messages in and out, so that it can move
// into worker threads without the session core noticing. Knows nothing of NG, SDP or calls.

export interface Endpoint { address: string; port: number }

/**
 * Sockets a plane keeps bound ahead of need, per address (they hold descriptors, so the daemon's
 * call capacity counts them): the next PREBIND_PAIRS pairs of a LocalMediaPlane's port queue,
 * bound by the native addon's socket thread (media/relay.ts), and the READY_PAIRS pairs a media
 * worker keeps open for openPair() to take without a round trip (media/worker-plane.ts).
 */
export const PREBIND_PAIRS = 16;
export const READY_PAIRS = 32;

export type SocketId = number;

/** A pair of local sockets on one address: RTP on an even port, RTCP on the next. */
export interface OpenedPair { rtp: SocketId; rtcp: SocketId; address: string; port: number }

/**
 * How one local socket behaves. The socket faces one party: packets from that party arrive
 * here and go out of `sink` (the socket facing the other party) to the sink's remote.
 */
export interface SocketPlan {
  id: SocketId;
  kind: 'rtp' | 'rtcp';
  /** Where this party said it receives (SDP), or null when not yet known (learned from media). */
  remote: Endpoint | null;
  /** Socket that forwards what arrives here; null drops. */
  sink: SocketId | null;
  /** Forward what arrives here (false: on hold in this direction, or rejected). */
  forward: boolean;
  /** Never learn a new remote from packets (rtpengine's `asymmetric`). */
  asymmetric: boolean;
  /** After the remote is confirmed, drop packets from any other source. */
  strictSource: boolean;
  /** After the remote is confirmed, a new source may still take over (after the same checks). */
  mediaHandover: boolean;
  /** RTP payload types a packet must carry to count as valid media for learning; empty: any. */
  payloadTypes: number[];
  /** Also accept RTCP on this RTP socket (rtcp-mux). */
  rtcpMux: boolean;
  /** Where RTCP arriving on this RTP socket goes (rtcp-mux on this side); null: same as `sink`. */
  rtcpSink: SocketId | null;
  /** SRTP towards the party this socket faces (SDES keys or DTLS-SRTP); absent/null: plain RTP. */
  crypto?: SocketCrypto | null;
  /** ICE with the party this socket faces; absent/null: no ICE (media goes to `remote`). */
  ice?: SocketIce | null;
  /**
   * The party this socket faces takes RTCP feedback (AVPF: PSFB/RTPFB, RFC 4585). When false,
   * feedback packets in RTCP sent to it are removed (a plain RTP/AVP phone never gets PLI/NACK/REMB).
   */
  rtcpFeedback?: boolean;
  /** Send RTCP SR/RR to this party from our own statistics when its peer sends none (generate-RTCP). */
  generateRtcp?: boolean;
  /**
   * RTP clock rate (Hz) per payload type this party sends (Opus 48000, video 90000): jitter and the
   * RTP timestamps of generated sender reports follow it. A payload type not listed counts as 8000.
   */
  clockRates?: ClockRates | null;
  /**
   * BUNDLE (RFC 8843): this socket carries several media of the party, each with its own sink.
   * What arrives goes to the route whose payload types the RTP packet carries (payload types are
   * unique within a bundle); RTCP goes by SSRC (the routes' `ssrcs`, and those seen in RTP either
   * way), else to the first route. The plan's own `sink`, `rtcpSink` and `forward` are the first
   * route's. Absent, null or empty: one medium, as before.
   */
  bundle?: BundleRoute[] | null;
}

/**
 * Payload types and their RTP clock rates (Hz), flat: [pt, hz, pt, hz, …]; of a payload type listed
 * twice, the later counts. Not an object keyed by payload type: {0: 8000, 101: 8000} has a
 * 102-element holey backing store, and building, cloning and reading it per offer and install cost
 * ~1 us against ~0.2 us for the pairs (node 20 here).
 */
export type ClockRates = readonly number[];

/** One medium of a BUNDLE socket (see SocketPlan.bundle). */
export interface BundleRoute {
  payloadTypes: number[];
  /** SSRCs the party announced for this medium (a=ssrc). */
  ssrcs: number[];
  /** As SocketPlan's `sink` / `rtcpSink` / `forward`, for this medium. */
  sink: SocketId | null;
  rtcpSink: SocketId | null;
  forward: boolean;
}

/** Master key and salt, base64 (RFC 4568 inline key material, split). */
export interface SrtpKeys { suite: string; key: string; salt: string }

export interface SocketCrypto {
  /**
   * SDES (RFC 4568): `rx` is what the party encrypts with (its a=crypto), `tx` what we encrypt
   * towards it with (the a=crypto we wrote to it).
   */
  sdes: { rx: SrtpKeys; tx: SrtpKeys; unencryptedSrtp?: boolean; unencryptedSrtcp?: boolean; unauthenticatedSrtp?: boolean } | null;
  /**
   * DTLS-SRTP (RFC 5763/5764) on this socket: our role, and the fingerprint the party's SDP
   * announced (its certificate must match, or no keys and no media). Keys come from the handshake.
   */
  dtls: { role: 'client' | 'server'; fingerprint: { hash: string; value: string } | null } | null;
}

export interface IceCandidate {
  foundation: string;
  component: 1 | 2;
  priority: number;
  address: string;
  port: number;
  type: 'host' | 'srflx' | 'prflx' | 'relay';
}

export interface SocketIce {
  /** Our credentials (what the party's checks must carry) and the party's. */
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string | null;
  remotePwd: string | null;
  /** We are the controlling agent (RFC 8445 6.1.1); `lite`: we only answer checks (ICE-lite). */
  controlling: boolean;
  lite: boolean;
  /** The party's candidates for this socket's component. */
  candidates: IceCandidate[];
}

/** Per-stream RTP quality (RFC 3550 statistics, RTCP-reported figures, an MOS estimate). */
export interface StreamQuality {
  received: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  jitterMs: number;
  /** From the party's RTCP receiver reports, when any. */
  rtcpFractionLost: number | null;
  rtcpCumulativeLost: number | null;
  rttMs: number | null;
  mos: number | null;
}

export interface SocketStats {
  id: SocketId;
  localAddress: string;
  localPort: number;
  /** Current destination: the SDP address, or the learned one. */
  remote: Endpoint | null;
  /** A packet arrived from `remote` (or `remote` was learned): this endpoint is known good. */
  confirmed: boolean;
  packets: number;
  bytes: number;
  errors: number;
  /** Packets not forwarded (hold, no destination yet, strict source, not media). */
  dropped: number;
  /** 0 when no packet has arrived. */
  lastPacketMs: number;
  ssrc: number | null;
  /** RTP statistics of what arrived here, when the plane keeps them. */
  quality?: StreamQuality | null;
  /** SRTP packets dropped: failed authentication, replayed, or malformed. */
  srtpFailures?: number;
  /** ICE and DTLS progress on this socket, when used. */
  ice?: 'checking' | 'connected' | 'failed' | null;
  dtls?: 'handshaking' | 'connected' | 'failed' | null;
}

export interface RecordingStream {
  id: SocketId;
  /** The participant's tag (metadata maps the WAV numbers to tags). */
  tag: string;
  kind: 'rtp' | 'rtcp';
  /** The party's address (source of what arrives on `id`) and ours. */
  src: Endpoint | null;
  dst: Endpoint;
  /** Payload type → encoding (`PCMU/8000`), from the SDP. */
  codecs: Record<number, string>;
}

export interface RecordingRequest {
  /** The call's group (call-id): one recording per call. */
  group: string;
  callId: string;
  dir: string;
  stem: string;
  metadata: string;
  streams: RecordingStream[];
}

export interface RecordedFile { path: string; bytes: number; kind: 'pcap' | 'wav' | 'mix' | 'metadata'; tag?: string }

/** A local address's port pairs; with the native socket layer, its parked sockets too (media/udp.ts). */
export interface PortFigures {
  address: string;
  /** Free and total RTP/RTCP pairs (a port whose socket is parked is free). */
  free: number;
  total: number;
  /** Freed ports' sockets kept bound now, binds that took one, and datagrams they dropped (since start). */
  parked?: number;
  reused?: number;
  parkedDrops?: number;
}

/** Adds `p`'s parking figures (the same address on another thread) to `into`'s. */
export function addParking(into: PortFigures, p: PortFigures): void {
  if (p.parked === undefined) return;
  into.parked = (into.parked ?? 0) + p.parked;
  into.reused = (into.reused ?? 0) + (p.reused ?? 0);
  into.parkedDrops = (into.parkedDrops ?? 0) + (p.parkedDrops ?? 0);
}

/** Things the plane reports: state changes only, never per packet. */
export type PlaneEvent =
  | { type: 'learned'; id: SocketId; remote: Endpoint; previous: Endpoint | null }
  | { type: 'confirmed'; id: SocketId; remote: Endpoint }
  /**
   * A media worker died: these sockets are gone (their ports are free again). The session must end
   * the calls that used them; the plane goes on serving new calls.
   */
  | { type: 'lost'; ids: SocketId[]; reason: string }
  | { type: 'ice'; id: SocketId; state: 'connected' | 'failed'; remote: Endpoint | null }
  | { type: 'dtls'; id: SocketId; state: 'connected' | 'failed'; reason: string | null }
  | { type: 'recording-failed'; group: string; error: string };

export class NoPortsError extends Error {
  constructor(address: string) { super(`no free media port on ${address}`); }
}

export interface MediaPlane {
  /**
   * Binds an RTP/RTCP pair on `address`; rejects with NoPortsError when the range is used up.
   * `group` (the call-id) keeps the sockets of one call together: a forwarding plan links only
   * sockets opened with the same group (they live in the same media worker).
   */
  openPair(address: string, group?: string): Promise<OpenedPair>;
  /** Installs or replaces the plan of each socket named. */
  install(plans: readonly SocketPlan[]): void;
  /** Closes the sockets; their ports go back to the pool once closed. */
  close(ids: readonly SocketId[]): void;
  stats(ids: readonly SocketId[]): SocketStats[];
  /**
   * The latest packet time of these sockets (0: none), for the once-a-second timeout sweep: the
   * full stats() of 900 calls took 8-20 ms there, a stall every NG command waited behind.
   */
  latestPacketMs?(ids: readonly SocketId[]): number;
  /**
   * Packets, bytes and errors of each socket at out[3i], out[3i+1], out[3i+2] (left as they are
   * for a socket it does not know), and how many it knows: the once-a-second packet total and the
   * metrics, without stats()' objects (7.6 ms for 1000 calls, 18 ms for 3000, on the main thread).
   */
  socketCounters?(ids: readonly SocketId[], out: Float64Array): number;
  /** Free and total port pairs per local address, and its parked sockets where the socket layer parks them. */
  ports(): PortFigures[];
  onEvent(listener: (ev: PlaneEvent) => void): void;
  shutdown(): Promise<void>;
  /** DTLS certificate (PEM) the plane's DTLS endpoints use; set once at start, before any DTLS plan. */
  setCertificate?(cert: { certPem: string; keyPem: string }): void;
  /** Call recording (pcap, WAV per party and mixed, metadata); file work never blocks the packet path. */
  startRecording?(req: RecordingRequest): void;
  updateRecording?(group: string, streams: RecordingStream[]): void;
  pauseRecording?(group: string): void;
  resumeRecording?(group: string): void;
  stopRecording?(group: string): Promise<RecordedFile[]>;
}
