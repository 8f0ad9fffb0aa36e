// libpcap capture file of a call's media, as Wireshark/tshark read it: each datagram is
// wrapped in a synthesized IPv4/IPv6 + UDP header carrying the leg's real addresses and ports.
// Format: the classic pcap savefile (IETF draft-ietf-opsawg-pcap), LINKTYPE_RAW (101).
import { isIP } from 'node:net';
import { FileSink } from './file-sink.js';

export interface Endpoint { address: string; port: number }

const LINKTYPE_RAW = 101; // a bare IPv4 or IPv6 packet; the version nibble tells which
const SNAPLEN = 65535;
const RECORD_HEADER = 16;
const IP4_HEADER = 20;
const IP6_HEADER = 40;
const UDP_HEADER = 8;
/** Records are gathered into chunks this big before they go to the file. */
const CHUNK = 64 << 10;

/** Without URI brackets or an IPv6 zone id. */
const unbracket = (address: string): string => address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');

/** An address as bytes: 4 for IPv4, 16 for IPv6 (IPv4-mapped when `v6` forces it). */
export function addressBytes(address: string, v6 = false): Uint8Array {
  const bare = unbracket(address);
  const fam = isIP(bare);
  if (fam === 4) {
    const b4 = Uint8Array.from(bare.split('.').map(Number));
    return v6 ? Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...b4]) : b4;
  }
  if (fam !== 6) return v6 ? new Uint8Array(16) : new Uint8Array(4);
  // RFC 4291 2.2: hex groups, one "::" for a run of zeros, maybe a dotted IPv4 tail.
  const text = bare.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = groups(head), r = rest === undefined ? [] : groups(rest);
  const all = [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

/** RFC 1071 ones' complement sum over `len` bytes of `b` from `off`, added to `sum`. */
function sum16(b: Buffer | Uint8Array, off: number, len: number, sum: number): number {
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i]! << 8) | b[off + i + 1]!;
  if (len & 1) sum += b[off + len - 1]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** A leg's addresses, parsed once: the writer's per-packet work is copying and checksums. */
export interface PcapFlow { src: Uint8Array; dst: Uint8Array; srcPort: number; dstPort: number }

export function pcapFlow(src: Endpoint, dst: Endpoint): PcapFlow {
  // Both ends in one family; a mixed pair (never on one socket) is written as IPv6.
  const v6 = isIP(unbracket(src.address)) === 6 || isIP(unbracket(dst.address)) === 6;
  return { src: addressBytes(src.address, v6), dst: addressBytes(dst.address, v6), srcPort: src.port, dstPort: dst.port };
}

export class PcapWriter {
  packets = 0;
  private readonly sink: FileSink;
  private chunk = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private ipId = 0;

  constructor(path: string, onError: (err: Error) => void) {
    this.sink = new FileSink(path, onError);
    // Global header, little-endian: the magic's byte order tells readers which we used.
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0); // microsecond timestamps
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(LINKTYPE_RAW, 20);
    this.sink.write(h);
  }

  get failed(): Error | null { return this.sink.failed; }

  /** Appends one UDP datagram `payload` of `flow`, received at `timeMs` (Unix ms, may be fractional). */
  packet(flow: PcapFlow, payload: Uint8Array, timeMs: number): void {
    if (this.sink.failed !== null) return;
    const v6 = flow.src.length === 16;
    const ipLen = (v6 ? IP6_HEADER : IP4_HEADER) + UDP_HEADER + payload.length;
    if (ipLen > SNAPLEN) return;
    if (this.used + RECORD_HEADER + ipLen > this.chunk.length) this.flush();
    const b = this.chunk;
    let o = this.used;
    const us = Math.round(timeMs * 1000);
    b.writeUInt32LE(Math.floor(us / 1e6), o);
    b.writeUInt32LE(us % 1e6, o + 4);
    b.writeUInt32LE(ipLen, o + 8);
    b.writeUInt32LE(ipLen, o + 12);
    o += RECORD_HEADER;
    const ip = o;
    if (v6) {
      // RFC 8200 3: version 6, no traffic class or flow label.
      b.writeUInt32BE(0x60000000, o);
      b.writeUInt16BE(UDP_HEADER + payload.length, o + 4);
      b[o + 6] = 17; b[o + 7] = 64;
      b.set(flow.src, o + 8);
      b.set(flow.dst, o + 24);
      o += IP6_HEADER;
    } else {
      // RFC 791 3.1: IHL 5, DF, TTL 64, protocol 17, header checksum over the header.
      b.writeUInt16BE(0x4500, o);
      b.writeUInt16BE(ipLen, o + 2);
      b.writeUInt16BE(this.ipId = (this.ipId + 1) & 0xffff, o + 4);
      b.writeUInt16BE(0x4000, o + 6);
      b[o + 8] = 64; b[o + 9] = 17;
      b.writeUInt16BE(0, o + 10);
      b.set(flow.src, o + 12);
      b.set(flow.dst, o + 16);
      b.writeUInt16BE(fold(sum16(b, o, IP4_HEADER, 0)), o + 10);
      o += IP4_HEADER;
    }
    const udpLen = UDP_HEADER + payload.length;
    b.writeUInt16BE(flow.srcPort, o);
    b.writeUInt16BE(flow.dstPort, o + 2);
    b.writeUInt16BE(udpLen, o + 4);
    b.writeUInt16BE(0, o + 6);
    b.set(payload, o + 8);
    // RFC 768 / RFC 8200 8.1: checksum over a pseudo-header (addresses, protocol, length) and
    // the datagram; mandatory over IPv6, and tools flag a wrong one, so we compute it.
    const addrOff = v6 ? ip + 8 : ip + 12;
    let sum = sum16(b, addrOff, flow.src.length * 2, 17 + udpLen);
    sum = sum16(b, o, udpLen, sum);
    const ck = fold(sum);
    b.writeUInt16BE(ck === 0 ? 0xffff : ck, o + 6);
    this.used = o + udpLen;
    this.packets++;
  }

  /** Hands the gathered records to the file. */
  flush(): void {
    if (this.used === 0) return;
    this.sink.write(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
  }

  /** Resolves with the file's size; never rejects. */
  close(): Promise<number> {
    this.flush();
    return this.sink.close();
  }
}
