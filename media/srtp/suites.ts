// SRTP crypto suites as data (RFC 4568 §6.2, RFC 6188, RFC 7714 §12–14, RFC 5764 §4.1.2):
// everything else in media/srtp/ and the SDES code is driven from this table. Imports nothing.

export type SrtpCipher = 'aes-cm' | 'aes-f8' | 'aes-gcm' | 'null';

export interface SrtpSuite {
  readonly name: string;
  readonly cipher: SrtpCipher;
  /** Master key and session encryption key, bytes (NULL suites still derive auth keys with AES-128). */
  readonly keyLength: number;
  /** Master salt, bytes: 14 for the counter-mode family, 12 for AEAD (RFC 7714 §12). */
  readonly saltLength: number;
  /** Bytes appended to each SRTP packet: HMAC-SHA1 truncated to 80 or 32 bits, or the 16-byte GCM tag. */
  readonly rtpTagLength: number;
  /** SRTCP always uses the 80-bit tag, even for the _32 suites (RFC 4568 §6.2.1–6.2.2). */
  readonly rtcpTagLength: number;
  /** DTLS-SRTP protection profile id (RFC 5764 §4.1.2, RFC 7714 §14.2), if one is registered. */
  readonly dtlsProfile?: number;
}

function hmacSuite(name: string, cipher: SrtpCipher, keyLength: number, tag: 80 | 32, dtlsProfile?: number): SrtpSuite {
  return { name, cipher, keyLength, saltLength: 14, rtpTagLength: tag / 8, rtcpTagLength: 10, dtlsProfile };
}
function gcmSuite(name: string, keyLength: number, dtlsProfile: number): SrtpSuite {
  return { name, cipher: 'aes-gcm', keyLength, saltLength: 12, rtpTagLength: 16, rtcpTagLength: 16, dtlsProfile };
}

const LIST: readonly SrtpSuite[] = [
  gcmSuite('AEAD_AES_256_GCM', 32, 0x0008),
  gcmSuite('AEAD_AES_128_GCM', 16, 0x0007),
  hmacSuite('AES_256_CM_HMAC_SHA1_80', 'aes-cm', 32, 80),
  hmacSuite('AES_256_CM_HMAC_SHA1_32', 'aes-cm', 32, 32),
  hmacSuite('AES_192_CM_HMAC_SHA1_80', 'aes-cm', 24, 80),
  hmacSuite('AES_192_CM_HMAC_SHA1_32', 'aes-cm', 24, 32),
  hmacSuite('AES_CM_128_HMAC_SHA1_80', 'aes-cm', 16, 80, 0x0001),
  hmacSuite('AES_CM_128_HMAC_SHA1_32', 'aes-cm', 16, 32, 0x0002),
  hmacSuite('F8_128_HMAC_SHA1_80', 'aes-f8', 16, 80),
  hmacSuite('F8_128_HMAC_SHA1_32', 'aes-f8', 16, 32),
  hmacSuite('NULL_HMAC_SHA1_80', 'null', 16, 80, 0x0005),
  hmacSuite('NULL_HMAC_SHA1_32', 'null', 16, 32, 0x0006),
];

/** Every suite we implement, strongest first: rtpengine 10.5's SDES offer order. */
export const SRTP_SUITES: readonly SrtpSuite[] = LIST;

const BY_NAME = new Map(LIST.map((s) => [s.name, s]));

/** Suite names are case-sensitive in SDP (RFC 4568 §9.2), so no case folding here. */
export function srtpSuite(name: string): SrtpSuite | undefined {
  return BY_NAME.get(name);
}

export function srtpSuiteByDtlsProfile(id: number): SrtpSuite | undefined {
  return LIST.find((s) => s.dtlsProfile === id);
}
