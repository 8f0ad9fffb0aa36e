// The media plane's interface: plain, serializable messages in and out, so that it can move
// into worker threads without the session core noticing. Knows nothing of NG, SDP or calls.

export interface Endpoint { address: string; port: number }

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
}

/** Things the plane reports: state changes only, never per packet. */
export type PlaneEvent =
  | { type: 'learned'; id: SocketId; remote: Endpoint; previous: Endpoint | null }
  | { type: 'confirmed'; id: SocketId; remote: Endpoint }
  /**
   * A media worker died: these sockets are gone (their ports are free again). The session must end
   * the calls that used them; the plane goes on serving new calls.
   */
  | { type: 'lost'; ids: SocketId[]; reason: string };

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
  /** Free and total port pairs per local address. */
  ports(): { address: string; free: number; total: number }[];
  onEvent(listener: (ev: PlaneEvent) => void): void;
  shutdown(): Promise<void>;
}
