// Typed errors of the session core. Only control/ knows how they are worded on the wire.

export type SessionErrorCode =
  | 'NO_CALL'          // no such call-id
  | 'NO_TAG'           // from-tag given, but no such participant
  | 'BAD_SDP'          // the SDP cannot be parsed
  | 'NO_MEDIA'         // the SDP has no m= line
  | 'INCOMPLETE_SDP'   // media without a connection address
  | 'BAD_DIALOGUE'     // answer that matches no offer
  | 'NO_PORTS'         // port range exhausted
  | 'SESSION_LIMIT';   // max-sessions reached, or not accepting new calls

export class SessionError extends Error {
  constructor(readonly code: SessionErrorCode, message: string) {
    super(message);
    this.name = 'SessionError';
  }
}
