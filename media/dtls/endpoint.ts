// One DTLS-SRTP association (RFC 5763, RFC 5764) on a relay socket, over werift's DtlsServer /
// DtlsClient. The relay decides which datagrams may reach it (only from the party: its address,
// or a validated ICE pair); the endpoint then keeps to the first source it heard during a
// handshake, and once connected ignores every new ClientHello: a datagram from elsewhere never
// resets a running handshake or a running session. After the handshake the party's certificate
// must match the fingerprint from its SDP, or there are no keys (and so no media).
// werift retransmits its flights itself; we bound the whole handshake with a timer.
import { DtlsClient, DtlsServer, type DtlsSocket } from 'werift';
import { createSrtpContext } from '../srtp/context.js';
import { srtpSuiteByDtlsProfile, type SrtpSuite } from '../srtp/suites.js';
import { fingerprintOf, sameFingerprint } from './certificate.js';
import type { SrtpPair } from '../transform.js';

/** SRTP protection profiles we offer/accept, in our order of preference (RFC 5764 §4.1.2, RFC 7714 §14.2). */
export const SRTP_PROFILES = [7, 8, 1, 2] as const;
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export interface DtlsHost {
  /** Sends a DTLS record to the party (the endpoint names where it heard the party, if anywhere). */
  send(buf: Buffer, source: { address: string; port: number } | null): void;
  onConnected(keys: SrtpPair, suite: SrtpSuite): void;
  onFailed(reason: string): void;
}

export interface DtlsOptions {
  role: 'client' | 'server';
  cert: { certPem: string; keyPem: string };
  fingerprint: { hash: string; value: string } | null;
  timeoutMs?: number;
}

const CT_HANDSHAKE = 22;
const HT_CLIENT_HELLO = 1;

/** RFC 6347 §4.1: a record with epoch 0 carrying a ClientHello (first handshake message in it). */
export function isClientHello(buf: Buffer): boolean {
  return buf.length >= 14 && buf[0] === CT_HANDSHAKE && buf.readUInt16BE(3) === 0 && buf[13] === HT_CLIENT_HELLO;
}

/** RFC 7983: first byte 20..63 is DTLS. */
export function isDtls(buf: Buffer): boolean {
  return buf.length >= 13 && buf[0]! >= 20 && buf[0]! <= 63;
}

export class DtlsEndpoint {
  state: 'idle' | 'handshaking' | 'connected' | 'failed' = 'idle';
  /** Where the party spoke from during the handshake (the endpoint's lock). */
  source: { address: string; port: number } | null = null;
  private readonly sock: DtlsSocket;
  private readonly transport: {
    type: string; address: { address: string; port: number; family: string }; closed: boolean;
    onData: (data: Buffer, addr: unknown) => void; send: (data: Buffer) => Promise<void>; close: () => Promise<void>;
  };
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(readonly opts: DtlsOptions, private readonly host: DtlsHost) {
    this.transport = {
      type: 'udp', address: { address: '0.0.0.0', port: 0, family: 'IPv4' }, closed: false,
      onData: () => undefined, // werift puts its receiver here
      send: async (data: Buffer) => { if (!this.closed) this.host.send(data, this.source); },
      close: async () => undefined,
    };
    const options = {
      transport: this.transport as never,
      cert: opts.cert.certPem, key: opts.cert.keyPem,
      signatureHash: { hash: 4, signature: 3 } as never, // sha256 / ecdsa, as the certificate
      srtpProfiles: [...SRTP_PROFILES] as never,
      extendedMasterSecret: true,
      certificateRequest: true,
    };
    this.sock = opts.role === 'server' ? new DtlsServer(options) : new DtlsClient(options);
    this.sock.onConnect.subscribe(() => this.connected());
    this.sock.onError.subscribe((e: Error) => this.fail(`handshake error: ${e.message}`));
  }

  /** Client: starts the handshake (the host must know where the party is by now). */
  start(): void {
    if (this.opts.role !== 'client' || this.state !== 'idle' || this.closed) return;
    this.begin();
    (this.sock as DtlsClient).connect().catch((e: Error) => this.fail(`handshake failed: ${e.message}`));
  }

  private begin(): void {
    this.state = 'handshaking';
    this.timer = setTimeout(() => { if (this.state === 'handshaking') this.fail('handshake timed out'); }, this.opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    this.timer.unref();
  }

  /** A DTLS datagram the relay accepted as coming from the party. */
  receive(buf: Buffer, address: string, port: number): void {
    if (this.closed || this.state === 'failed') return;
    if (this.state === 'connected') {
      // No renegotiation and no second session on a running one (a new DTLS session comes with a new plan).
      if (isClientHello(buf)) return;
    } else if (this.source !== null && (this.source.address !== address || this.source.port !== port)) {
      return; // the handshake belongs to the first source heard
    }
    if (this.state === 'idle') {
      if (this.opts.role === 'server' && !isClientHello(buf)) return;
      this.begin();
    }
    if (this.source === null) this.source = { address, port };
    try {
      this.transport.onData(buf, { address, port });
    } catch {
      // werift threw on a malformed record: ignore the datagram
    }
  }

  private connected(): void {
    if (this.closed || this.state !== 'handshaking') return;
    const fp = this.opts.fingerprint;
    const der = this.sock.remoteCertificate;
    if (fp === null) { this.fail('no fingerprint in the SDP'); return; }
    const got = der ? fingerprintOf(Buffer.from(der), fp.hash) : null;
    if (got === null) { this.fail(der ? `unsupported fingerprint hash ${fp.hash}` : 'no peer certificate'); return; }
    if (!sameFingerprint(got, fp.value)) { this.fail('certificate fingerprint mismatch'); return; }
    const profile = this.sock.srtp.srtpProfile as number | undefined;
    const suite = profile === undefined ? undefined : srtpSuiteByDtlsProfile(profile);
    if (!suite) { this.fail('no SRTP profile negotiated'); return; }
    const k = suite.keyLength, s = suite.saltLength;
    // RFC 5764 §4.2: client key, server key, client salt, server salt.
    const m = this.sock.exportKeyingMaterial('EXTRACTOR-dtls_srtp', 2 * (k + s));
    const clientKey = m.subarray(0, k), serverKey = m.subarray(k, 2 * k);
    const clientSalt = m.subarray(2 * k, 2 * k + s), serverSalt = m.subarray(2 * k + s, 2 * (k + s));
    const client = createSrtpContext(suite, Buffer.from(clientKey), Buffer.from(clientSalt));
    const server = createSrtpContext(suite, Buffer.from(serverKey), Buffer.from(serverSalt));
    this.state = 'connected';
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.host.onConnected(this.opts.role === 'client' ? { tx: client, rx: server } : { tx: server, rx: client }, suite);
  }

  private fail(reason: string): void {
    if (this.closed || this.state === 'failed' || this.state === 'connected') return;
    this.state = 'failed';
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.host.onFailed(reason);
  }

  close(): void {
    this.closed = true;
    this.transport.closed = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
  }
}
