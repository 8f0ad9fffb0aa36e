// The daemon's DTLS certificate (RFC 5763): one self-signed ECDSA P-256 certificate per daemon,
// made at start, and its fingerprints as SDP writes them (a=fingerprint, RFC 8122: upper-case hex
// pairs joined by colons). Imports nothing of ours; werift makes the certificate.
import { createHash, X509Certificate } from 'node:crypto';
import { CipherContext } from 'werift';

export type FingerprintHash = 'sha-1' | 'sha-224' | 'sha-256' | 'sha-384' | 'sha-512';

export interface DtlsCertificate {
  certPem: string;
  keyPem: string;
  /** Fingerprint of the DER certificate per hash (sha-256 is what we offer by default). */
  fingerprints: Record<FingerprintHash, string>;
}

const HASHES: readonly FingerprintHash[] = ['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512'];

/** node:crypto's name of an SDP hash function (RFC 8122 §5, IANA "Hash Function Textual Names"). */
export function nodeHashName(h: string): string | null {
  switch (h.toLowerCase()) {
    case 'sha-1': return 'sha1';
    case 'sha-224': return 'sha224';
    case 'sha-256': return 'sha256';
    case 'sha-384': return 'sha384';
    case 'sha-512': return 'sha512';
    case 'md5': return 'md5';
    default: return null;
  }
}

/** Fingerprint of DER bytes as SDP writes it, or null for an unknown hash name. */
export function fingerprintOf(der: Buffer, hash: string): string | null {
  const name = nodeHashName(hash);
  if (name === null) return null;
  const hex = createHash(name).update(der).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** Compares fingerprints as text in any case, with or without colons. */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string): string => s.replace(/[:\s]/g, '').toUpperCase();
  return norm(a) === norm(b) && norm(a).length > 0;
}

export function derOfPem(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

/** Makes the daemon's certificate (about 10 ms; async, so NG is served meanwhile). */
export async function createCertificate(): Promise<DtlsCertificate> {
  // werift's enums: hash 4 = sha256, signature 3 = ecdsa; named curve 23 = secp256r1.
  const { certPem, keyPem } = await CipherContext.createSelfSignedCertificateWithKey({ hash: 4, signature: 3 }, 23);
  const der = derOfPem(certPem);
  const fingerprints = {} as Record<FingerprintHash, string>;
  for (const h of HASHES) fingerprints[h] = fingerprintOf(der, h)!;
  return { certPem, keyPem, fingerprints };
}
