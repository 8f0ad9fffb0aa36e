// The ordered SDP model and the rewriter, without a daemon (the differential test covers the
// rewriter against rtpengine 10.5 end to end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionError } from '../../../daemon/session/errors.js';
import { mediaInfo, parseSdp, serializeSdp } from '../../../daemon/session/sdp.js';
import { rewriteSdp, type MediaTarget } from '../../../daemon/session/rewrite.js';

const BODY = [
  'v=0', 'o=alice 1 2 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'a=sendonly',
  'm=audio 4000 RTP/AVP 0 101', 'b=AS:64', 'a=x-custom:1', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15',
  'a=rtcp:4001', 'a=ptime:20',
  'm=video 0 RTP/AVP 31', 'c=IN IP6 2001:db8::1', 'a=inactive',
  '',
].join('\r\n');

function code(fn: () => unknown): string {
  try { fn(); } catch (e) { return e instanceof SessionError ? e.code : String(e); }
  return 'no error';
}

test('parseSdp keeps every line in order and serialises back byte for byte', () => {
  const doc = parseSdp(BODY);
  assert.equal(doc.session.length, 6);
  assert.equal(doc.media.length, 2);
  assert.deepEqual(doc.media[0]!.fmts, ['0', '101']);
  assert.deepEqual(doc.media[0]!.lines.map((l) => l.type + '=' + l.value), ['b=AS:64', 'a=x-custom:1', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=rtcp:4001', 'a=ptime:20']);
  assert.equal(serializeSdp(doc), BODY);
  // LF-only input is accepted; output is CRLF.
  assert.equal(serializeSdp(parseSdp(BODY.replace(/\r\n/g, '\n'))), BODY);
});

test('parseSdp refuses what rtpengine refuses, with typed errors', () => {
  assert.equal(code(() => parseSdp('garbage')), 'BAD_SDP');
  assert.equal(code(() => parseSdp('v=0\r\nthis is not sdp\r\n')), 'BAD_SDP');
  assert.equal(code(() => parseSdp('v=0\r\nm=audio 99999 RTP/AVP 0\r\n')), 'BAD_SDP');
  assert.equal(code(() => parseSdp('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n')), 'NO_MEDIA');
  const noConn = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  assert.equal(code(() => mediaInfo(parseSdp(noConn), noConn)), 'INCOMPLETE_SDP');
  assert.equal(code(() => parseSdp('v=0\r\n' + 'a=x\r\n'.repeat(20000) + 'm=audio 1 RTP/AVP 0\r\n')), 'BAD_SDP');
});

test('mediaInfo reads connection, RTCP, direction (session level wins), codecs with static names', () => {
  const info = mediaInfo(parseSdp(BODY), BODY);
  assert.deepEqual(info[0]!.connection, { family: 4, address: '192.0.2.1' });
  assert.deepEqual(info[0]!.rtcp, { port: 4001, connection: null });
  assert.equal(info[0]!.direction, 'sendonly');
  assert.deepEqual(info[0]!.codecs, [{ pt: 0, encoding: 'PCMU/8000' }, { pt: 101, encoding: 'telephone-event/8000' }]);
  assert.equal(info[0]!.ptime, 20);
  assert.deepEqual(info[1]!.connection, { family: 6, address: '2001:db8::1' });
  assert.equal(info[1]!.port, 0);
});

test('rewriteSdp points media at the relay, keeps unknown attributes in place, adds rtpmap, direction, rtcp', () => {
  const doc = parseSdp(BODY);
  const target: MediaTarget = {
    address: '203.0.113.5', family: 4, port: 30000, rtcpPort: 30001, rtcpMux: false, muxOnly: false, proto: 'RTP/AVP',
    payloadTypes: ['0', '101'], direction: 'sendonly', mid: null, ice: null, ptime: 20, fmtpFallback: new Map(),
  };
  const out = serializeSdp(rewriteSdp(doc, {
    medias: [target, null], sessionAddress: { address: '203.0.113.5', family: 4 }, replace: new Set(['origin']),
    iceMode: 'remove', noRtcpAttribute: false, fullRtcpAttribute: false, originalSendrecv: false, stripExtmap: false,
    loopProtect: null, origin: null,
  }));
  assert.equal(out, [
    'v=0', 'o=alice 1 2 IN IP4 203.0.113.5', 's=-', 'c=IN IP4 203.0.113.5', 't=0 0',
    'm=audio 30000 RTP/AVP 0 101', 'b=AS:64', 'a=x-custom:1', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15', 'a=sendonly', 'a=rtcp:30001', 'a=ptime:20',
    // A rejected stream keeps port 0 and its attributes; its c= points at us too (rtpengine 10.5).
    'm=video 0 RTP/AVP 31', 'c=IN IP4 203.0.113.5', 'a=inactive', '',
  ].join('\r\n'));
});
