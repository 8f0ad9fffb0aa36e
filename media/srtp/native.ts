// SRTP's hot primitives from the native addon (media/native/srtp.c): AES counter mode with one
// OpenSSL context per key, and HMAC-SHA1 from precomputed inner/outer states. null when the addon
// is missing or RTPRELAY_SRTP_CRYPTO=js, and context.ts uses its node:crypto code instead; the
// RFC 3711/7714 vector tests run against both.
import { nativeAddon } from '../native-addon.js';
import type { Crypt } from './cipher.js';

interface SrtpAddon {
  aesCtr(key: Buffer): unknown;
  aesCtrXor(handle: unknown, out: Buffer, src: Buffer, start: number, end: number, iv: Buffer): void;
  hmacSha1(key: Buffer): unknown;
  hmacSha1Sign(handle: unknown, buf: Buffer, end: number, roc: number, out: Buffer): void;
}

/** HMAC-SHA1 of buf[0..end) || ROC (roc < 0: none). The result is reused by the next call. */
export type Sign = (buf: Buffer, end: number, roc: number) => Buffer;

function srtpAddon(): SrtpAddon | null {
  if (process.env.RTPRELAY_SRTP_CRYPTO === 'js') return null;
  const a = nativeAddon();
  return a !== null && typeof a.aesCtr === 'function' ? (a as unknown as SrtpAddon) : null;
}

/** Which implementation new SRTP contexts use. */
export function srtpCryptoKind(): 'native' | 'node:crypto' {
  return srtpAddon() === null ? 'node:crypto' : 'native';
}

export function nativeAesCm(key: Buffer): Crypt | null {
  const a = srtpAddon();
  if (a === null) return null;
  const h = a.aesCtr(key);
  return (out, src, start, end, iv) => { if (end > start) a.aesCtrXor(h, out, src, start, end, iv); };
}

export function nativeHmacSha1(key: Buffer): Sign | null {
  const a = srtpAddon();
  if (a === null) return null;
  const h = a.hmacSha1(key);
  const digest = Buffer.alloc(20);
  return (buf, end, roc) => { a.hmacSha1Sign(h, buf, end, roc, digest); return digest; };
}
