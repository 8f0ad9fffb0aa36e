// The NG wording of errors: the only place that maps the session's typed errors onto
// rtpengine's `error-reason` strings.
import type { Logger } from 'pino';
import { SessionError, type SessionErrorCode } from '../daemon/session/errors.js';
import type { NgDict } from './codec.js';

/** An error that is already in NG words (missing key, unknown command, …). */
export class NgError extends Error {
  constructor(readonly reason: string) { super(reason); }
}

/** Ours: rtpengine 10.5 sends nothing when a reply does not fit one datagram. */
export const REPLY_TOO_LARGE = 'Reply too large for UDP';

const REASON: Record<SessionErrorCode, string> = {
  NO_CALL: 'Unknown call-id',
  NO_TAG: 'From-tag given, but no such tag exists',
  BAD_SDP: 'Failed to parse SDP',
  NO_MEDIA: 'Error rewriting SDP',
  INCOMPLETE_SDP: 'Incomplete SDP specification',
  BAD_DIALOGUE: 'Invalid dialogue association',
  NO_PORTS: 'Ran out of ports',
  SESSION_LIMIT: 'Parallel session limit reached',
};

export function errorReply(err: unknown, log: Logger, supportsLoadLimit = false): NgDict {
  if (err instanceof NgError) return { result: 'error', 'error-reason': err.reason };
  if (err instanceof SessionError) {
    // Kamailio's "load limit" support: it then tries another instance without counting a failure.
    if (err.code === 'SESSION_LIMIT' && supportsLoadLimit) return { result: 'load limit', message: REASON.SESSION_LIMIT };
    return { result: 'error', 'error-reason': REASON[err.code] };
  }
  log.error({ err }, 'command failed unexpectedly');
  return { result: 'error', 'error-reason': 'Internal error' };
}
