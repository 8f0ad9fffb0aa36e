// SIP-level end to end: Kamailio 5.6 (rtpengine module, configured as for rtpengine) and two
// headless baresip phones make a call whose audio flows through rtprelay. Each phone sends a tone
// from a WAV file; each must record the other's tone. Skipped when kamailio/baresip are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT } from '../support/daemon.js';
import {
  assertHearsTone, missingSipTools as missing, onlyCall, packetsPerTag, sleep, startSipSetup, waitNoCalls, waitPackets, type SipSetup,
} from '../support/sip-phones.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/kamailio');

/** rtprelay, Kamailio and two registered phones (alice sends 440 Hz, bob 880 Hz); all stopped when `t` ends. */
function setup(t: Parameters<typeof startSipSetup>[0]): Promise<SipSetup> {
  return startSipSetup(t, { fixtures: FIXTURES });
}

test('a call through Kamailio 5.6 and two baresip phones relays each tone to the other side', { timeout: 60_000 }, async (t) => {
  if (missing.length) { t.skip(`${missing.join(' and ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const started = Date.now();
  const { d, sipPort, a, b, diag } = await setup(t);

  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await a.ctrl.waitEvent('CALL_ESTABLISHED', 10_000), `alice's call established\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_ESTABLISHED', 5_000), `bob's call established\n${diag()}`);

  // While the call runs, rtprelay holds it and counts packets in both directions (about 2.5 s of audio).
  const callId = await onlyCall(d);
  await sleep(2000);
  const perTag = await waitPackets(d, callId, 100, 3000);
  assert.equal(Object.keys(perTag).length, 2, `two tags in the query: ${JSON.stringify(perTag)}\n${diag()}`);
  for (const [tag, n] of Object.entries(perTag)) assert.ok(n >= 100, `rtprelay received RTP from ${tag}: ${n} packets\n${diag()}`);

  a.ctrl.send('hangup');
  assert.ok(await a.ctrl.waitEvent('CALL_CLOSED', 5_000), `alice's call closed\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's call closed\n${diag()}`);

  // Kamailio's rtpengine_manage() on the BYE deleted the call (delete-delay is 0).
  assert.deepEqual(await waitNoCalls(d), [], `rtprelay's call list is empty after the BYE\n${diag()}`);

  // Each phone recorded (sndfile, "-dec.wav") the other's tone, not its own and not silence.
  assertHearsTone(t, a, b, diag);
  assertHearsTone(t, b, a, diag);
  t.diagnostic(`call test took ${Date.now() - started} ms`);
});

test('hold and resume (re-INVITEs through Kamailio) keep the call relayed; a CANCELled call is deleted', { timeout: 60_000 }, async (t) => {
  if (missing.length) { t.skip(`${missing.join(' and ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const { d, sipPort, a, b, diag } = await setup(t);

  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await a.ctrl.waitEvent('CALL_ESTABLISHED', 10_000), `alice's call established\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_ESTABLISHED', 5_000), `bob's call established\n${diag()}`);
  const callId = await onlyCall(d);
  const before = await waitPackets(d, callId, 25, 3000);
  assert.equal(Object.keys(before).length, 2, `two tags: ${JSON.stringify(before)}\n${diag()}`);

  // Hold: alice re-INVITEs with a=sendonly; Kamailio sends rtprelay an offer and an answer for the
  // existing call. Then resume: another re-INVITE back to sendrecv. Audio must flow again after it.
  const hold = await a.ctrl.request('hold');
  assert.ok(hold?.ok, `baresip accepted hold: ${JSON.stringify(hold)}`);
  await sleep(700);
  const resume = await a.ctrl.request('resume');
  assert.ok(resume?.ok, `baresip accepted resume: ${JSON.stringify(resume)}`);
  await sleep(300);
  const atResume = await packetsPerTag(d, callId);
  const want = Object.fromEntries(Object.entries(atResume).map(([tag, n]) => [tag, n + 50]));
  const after = await waitPackets(d, callId, want, 5000);
  for (const [tag, n] of Object.entries(after)) {
    assert.ok(n >= want[tag]!, `RTP from ${tag} flows through rtprelay after resume: ${atResume[tag]} -> ${n}\n${diag()}`);
  }
  assert.equal(await onlyCall(d), callId, 'still the same call');
  const cmds = d.logs.filter((l) => l.msg === 'ng request' && l.callId === callId).map((l) => l.command);
  assert.deepEqual(cmds.filter((c) => c === 'offer' || c === 'answer'), ['offer', 'answer', 'offer', 'answer', 'offer', 'answer'],
    `Kamailio sent offer/answer for the INVITE and both re-INVITEs: ${cmds.join(' ')}\n${diag()}`);
  a.ctrl.send('hangup');
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's call closed\n${diag()}`);
  assert.deepEqual(await waitNoCalls(d), [], `no call after the BYE\n${diag()}`);

  // A call alice gives up before bob answers: the INVITE's offer creates the call, the CANCEL deletes it.
  const mode = await b.ctrl.request('answermode', 'manual');
  assert.ok(mode?.ok, `baresip accepted answermode: ${JSON.stringify(mode)}`);
  b.ctrl.events.length = 0;
  a.ctrl.events.length = 0;
  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await b.ctrl.waitEvent('CALL_INCOMING', 5_000), `bob's phone rings\n${diag()}`);
  await onlyCall(d);
  a.ctrl.send('hangup');
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's ringing call closed by the CANCEL\n${diag()}`);
  assert.deepEqual(await waitNoCalls(d), [], `no call after the CANCEL\n${diag()}`);
});
