// SIP-level SRTP interworking: Kamailio 5.6 (rtpengine module) and two headless baresip 1.0 phones.
// alice speaks SRTP (SDES with `mediaenc=srtp-mand`, or DTLS-SRTP with `mediaenc=dtls_srtp` and
// full ICE with `medianat=ice`); bob is a legacy phone with plain RTP/AVP. Kamailio's route
// converts per direction (test/fixtures/kamailio-srtp/kamailio.cfg): alice's offer goes to bob as
// RTP/AVP without ICE/DTLS/SDES, bob's answer goes back in alice's protocol; bob's offer goes to
// alice as RTP/SAVP (SDES) or UDP/TLS/RTP/SAVPF with ICE=force. Each phone must hear the other's
// tone, so rtprelay decrypted alice's SRTP for bob and encrypted bob's RTP for alice.
// Skipped when kamailio/baresip (or baresip's srtp, dtls_srtp, ice modules) are missing; the ICE
// tests also when the test cannot create a network namespace (root and iproute2 needed).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/daemon.js';
import { until } from '../support/net.js';
import { createNetns, type Netns } from '../support/netns.js';
import {
  assertHearsTone, missingSipTools, onlyCall, sleep, startSipSetup, waitNoCalls, type SipSetup,
} from '../support/sip-phones.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/kamailio-srtp');
const MODULE_DIR = '/usr/lib/baresip/modules';

function missingFor(modules: string[]): string[] {
  return [...missingSipTools, ...modules.filter((m) => !fs.existsSync(path.join(MODULE_DIR, `${m}.so`))).map((m) => `baresip module ${m}`)];
}

/**
 * alice (the secure phone, 440 Hz) with `modules` and account `params`; bob plain (880 Hz).
 * `towardsSecure`: Kamailio's flags for an offer from bob to alice. With `ns`, alice runs in that
 * network namespace: Kamailio listens on the host side of its veth too, and rtprelay has an
 * interface `ns` there, which Kamailio's route names (direction=) for alice's leg; bob's leg stays
 * on rtprelay's default interface, 127.0.0.1.
 */
function setup(t: TestContext, modules: string[], params: string, towardsSecure: string, ns?: Netns): Promise<SipSetup> {
  return startSipSetup(t, {
    fixtures: FIXTURES,
    kamailioVars: {
      SECURE_USER: 'alice', TOWARDS_SECURE: towardsSecure,
      LISTEN_EXTRA: ns ? `listen=udp:${ns.hostAddr}:{{SIP_PORT}}\nmhomed=1` : '',
      FROM_SECURE_DIRECTION: ns ? ' direction=ns direction=default' : '',
      TO_SECURE_DIRECTION: ns ? ' direction=default direction=ns' : '',
    },
    daemonArgs: ns ? [`--interface=ns/${ns.hostAddr}`] : [],
    phones: [
      { user: 'alice', freq: 440, netns: ns, vars: { MODULES: modules.map((m) => `module\t\t\t${m}.so`).join('\n'), ACCOUNT_PARAMS: params } },
      { user: 'bob', freq: 880, vars: { MODULES: '', ACCOUNT_PARAMS: '' } },
    ],
  });
}

/** The transport protocol of each tag's (one) media in rtprelay's `query`. */
async function protocols(s: SipSetup, callId: string): Promise<Record<string, string>> {
  const q = await s.d.ng.cmd({ command: 'query', 'call-id': callId }) as any;
  assert.equal(q.result, 'ok', JSON.stringify(q));
  const out: Record<string, string> = {};
  for (const [tag, v] of Object.entries<any>(q.tags ?? {})) out[tag] = String(v.medias?.[0]?.protocol ?? '?');
  return out;
}

/**
 * Per tag, from one `query`: RTP-socket datagrams (`stats.packets`: STUN and DTLS count too) and
 * RTP rtprelay accepted (`quality.received`: passed SRTP authentication and the source checks).
 */
async function rtpCounts(s: SipSetup, callId: string): Promise<Record<string, { packets: number; accepted: number }>> {
  const q = await s.d.ng.cmd({ command: 'query', 'call-id': callId }) as any;
  assert.equal(q.result, 'ok', JSON.stringify(q));
  const out: Record<string, { packets: number; accepted: number }> = {};
  for (const [tag, v] of Object.entries<any>(q.tags ?? {})) {
    const c = out[tag] = { packets: 0, accepted: 0 };
    for (const m of v.medias ?? []) for (const st of m.streams ?? []) {
      if (!(st.flags ?? []).includes('RTP')) continue;
      c.packets += Number(st.stats?.packets ?? 0);
      c.accepted += Number(st.quality?.received ?? 0);
    }
  }
  return out;
}

/** NG commands Kamailio sent for the call, with the flags it gave to each. */
function ngRequests(s: SipSetup, callId: string): Record<string, unknown>[] {
  return s.d.logs.filter((l) => l.msg === 'ng request' && l.callId === callId);
}

/**
 * `caller` calls the other phone; while the call runs, rtprelay relays RTP both ways, the media protocols in its
 * query are alice's (`aliceProto`) and RTP/AVP; BYE deletes the call; each phone heard the other.
 * Returns the call-id for more checks.
 */
async function secureCall(t: TestContext, s: SipSetup, aliceProto: RegExp, caller: 'alice' | 'bob' = 'alice'): Promise<string> {
  const { d, sipPort, a, b, diag } = s;
  const [from, to] = caller === 'alice' ? [a, b] : [b, a];
  from.ctrl.send('dial', `sip:${to.user}@${from.proxyHost}:${sipPort}`);
  assert.ok(await from.ctrl.waitEvent('CALL_ESTABLISHED', 10_000), `${from.user}'s call established\n${diag()}`);
  assert.ok(await to.ctrl.waitEvent('CALL_ESTABLISHED', 5_000), `${to.user}'s call established\n${diag()}`);

  const callId = await onlyCall(d);
  const protos = await protocols(s, callId);
  t.diagnostic(`media protocols per tag: ${JSON.stringify(protos)}`);
  assert.equal(Object.keys(protos).length, 2, `two tags: ${JSON.stringify(protos)}`);
  const aliceTag = Object.keys(protos).find((tag) => aliceProto.test(protos[tag]!));
  assert.ok(aliceTag, `alice's media is ${aliceProto} in rtprelay's query: ${JSON.stringify(protos)}\n${diag()}`);
  const bobTag = Object.keys(protos).find((tag) => tag !== aliceTag)!;
  assert.equal(protos[bobTag], 'RTP/AVP', `bob's media is plain RTP/AVP: ${JSON.stringify(protos)}`);

  // About 2.5 s of audio each way (polled for at most 3 s more).
  await sleep(2000);
  let counts: Record<string, { packets: number; accepted: number }> = {};
  for (let i = 0; i < 30; i++) {
    counts = await rtpCounts(s, callId);
    if (Object.values(counts).every((c) => c.accepted >= 100)) break;
    await sleep(100);
  }
  t.diagnostic(`RTP per tag (datagrams / accepted): ${JSON.stringify(counts)}`);
  for (const [tag, c] of Object.entries(counts)) {
    const who = tag === aliceTag ? 'alice' : 'bob';
    assert.ok(c.accepted >= 100, `rtprelay accepted RTP from ${who}: ${JSON.stringify(c)}\n${diag()}`);
    // What was not accepted is the ICE/DTLS traffic on alice's socket, not failed SRTP.
    assert.ok(c.packets - c.accepted <= 30, `rtprelay dropped none of ${who}'s RTP (no SRTP failures): ${JSON.stringify(c)}\n${diag()}`);
  }

  from.ctrl.send('hangup');
  assert.ok(await from.ctrl.waitEvent('CALL_CLOSED', 5_000), `${from.user}'s call closed\n${diag()}`);
  assert.ok(await to.ctrl.waitEvent('CALL_CLOSED', 5_000), `${to.user}'s call closed\n${diag()}`);
  assert.deepEqual(await waitNoCalls(d), [], `rtprelay's call list is empty after the BYE\n${diag()}`);
  // The daemon's log (stderr) may trail its NG replies: wait for the delete's line.
  await until(() => ngRequests(s, callId).some((l) => l.command === 'delete'), 'the delete in rtprelay\'s log', 3000);

  assertHearsTone(t, a, b, diag);
  assertHearsTone(t, b, a, diag);
  return callId;
}

const SDES = ['srtp'];
test('SDES-SRTP phone calls a plain RTP phone through Kamailio: each hears the other', { timeout: 60_000 }, async (t) => {
  const missing = missingFor(SDES);
  if (missing.length) { t.skip(`${missing.join(', ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const s = await setup(t, SDES, ';mediaenc=srtp-mand', 'RTP/SAVP');
  const callId = await secureCall(t, s, /^RTP\/SAVP$/);

  // Kamailio's route: the offer asked for plain RTP towards bob, the answer went back with defaults.
  const reqs = ngRequests(s, callId).map((l) => l.command);
  assert.deepEqual(reqs.filter((c) => c !== 'query'), ['offer', 'answer', 'delete'], `NG commands: ${reqs.join(' ')}`);
  // alice's baresip took rtprelay's a=crypto key (bob, without the srtp module, would have refused
  // an RTP/SAVP offer: his call being established shows the offer reached him as RTP/AVP).
  assert.match(s.a.proc.out(), /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/, `alice's baresip used SRTP\n${s.a.proc.out()}`);
});

// baresip 1.0's ice module gathers host candidates on every interface except loopback (its
// `net_interface` does not apply): on 127.0.0.1 alone it would offer no candidate at all, and on
// this host it would offer the host's own other addresses, to which our tests send nothing. So the
// ICE tests run alice in a network namespace of their own (test/support/netns.ts): her only
// candidate is the namespace's end of the veth, rtprelay's checks go there from the host's end.
const DTLS = ['dtls_srtp'];
const DTLS_ICE = ['dtls_srtp', 'ice'];

/** The namespace for alice, or null when the test was skipped (the reason given). */
function iceNetns(t: TestContext): Netns | null {
  const missing = missingFor(DTLS_ICE);
  if (missing.length) { t.skip(`${missing.join(', ')} not installed (Debian packages; .ci/run installs them)`); return null; }
  const ns = createNetns(t);
  if (typeof ns === 'string') { t.skip(`${ns}: baresip 1.0's ice module offers no loopback candidate, so alice needs a namespace of her own`); return null; }
  return ns;
}

/** rtprelay's ICE on alice's leg connected to her namespace's address (so its checks went there, not to this host's addresses). */
function assertIceInNetns(events: Record<string, unknown>[], ns: Netns): void {
  const remotes = events.filter((e) => e.msg === 'ice' && e.state === 'connected').map((e) => (e.remote as { address?: string } | null)?.address);
  assert.ok(remotes.length > 0 && remotes.every((a) => a === ns.nsAddr), `ICE pairs with alice at ${ns.nsAddr}: ${remotes.join(' ')}`);
}

test('DTLS-SRTP phone (no ICE) calls a plain RTP phone through Kamailio: DTLS completes, each hears the other', { timeout: 60_000 }, async (t) => {
  const missing = missingFor(DTLS);
  if (missing.length) { t.skip(`${missing.join(', ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const s = await setup(t, DTLS, ';mediaenc=dtls_srtp', 'UDP/TLS/RTP/SAVPF ICE=remove');
  const callId = await secureCall(t, s, /^UDP\/TLS\/RTP\/SAVPF?$/);
  const events = s.d.logs.filter((l) => l.callId === callId && l.msg === 'dtls');
  assert.ok(events.some((e) => e.state === 'connected'), `DTLS connected: ${JSON.stringify(events)}\n${s.diag()}`);
  assert.ok(!events.some((e) => e.state === 'failed'), `no DTLS failure: ${JSON.stringify(events)}`);
  assert.match(s.a.proc.out(), /verified sha-256 fingerprint OK/, `alice's baresip checked rtprelay's fingerprint\n${s.a.proc.out()}`);
  assert.match(s.a.proc.out(), /DTLS-SRTP complete \(audio\/RTP\)/, `alice's baresip completed DTLS-SRTP with rtprelay\n${s.a.proc.out()}`);
});
test('DTLS-SRTP phone with ICE calls a plain RTP phone through Kamailio: ICE and DTLS complete, each hears the other', { timeout: 60_000 }, async (t) => {
  const ns = iceNetns(t);
  if (!ns) return;
  const s = await setup(t, DTLS_ICE, ';mediaenc=dtls_srtp;medianat=ice', 'UDP/TLS/RTP/SAVPF ICE=force', ns);
  const callId = await secureCall(t, s, /^UDP\/TLS\/RTP\/SAVPF?$/);

  // rtprelay's ICE agent and DTLS endpoint on alice's side reached `connected`, never `failed`.
  const events = s.d.logs.filter((l) => l.callId === callId && (l.msg === 'ice' || l.msg === 'dtls'));
  t.diagnostic(`ICE/DTLS events: ${events.map((e) => `${e.msg}:${e.state}`).join(' ')}`);
  assert.ok(events.some((e) => e.msg === 'dtls' && e.state === 'connected'), `DTLS connected: ${JSON.stringify(events)}\n${s.diag()}`);
  assert.ok(events.some((e) => e.msg === 'ice' && e.state === 'connected'), `ICE connected: ${JSON.stringify(events)}`);
  assert.ok(!events.some((e) => e.state === 'failed'), `no ICE/DTLS failure: ${JSON.stringify(events)}`);
  assertIceInNetns(events, ns);
  assert.match(s.a.proc.out(), /ice: audio: connectivity check is complete/, `alice's baresip completed ICE with rtprelay\n${s.a.proc.out()}`);
  assert.match(s.a.proc.out(), /verified sha-256 fingerprint OK/, `alice's baresip checked rtprelay's fingerprint\n${s.a.proc.out()}`);
  assert.match(s.a.proc.out(), /DTLS-SRTP complete \(audio\/RTP\) Profile=AES_CM_128_HMAC_SHA1_80/, `alice's baresip completed DTLS-SRTP with rtprelay\n${s.a.proc.out()}`);
  // baresip re-INVITEs once ICE completed (its default candidate changed); Kamailio's route gives
  // rtprelay an offer and an answer for it as for the first INVITE.
  const cmds = ngRequests(s, callId).map((l) => String(l.command)).filter((c) => c !== 'query');
  assert.deepEqual([cmds.slice(0, 2), cmds.at(-1)], [['offer', 'answer'], 'delete'], `NG commands: ${cmds.join(' ')}`);
  assert.ok(cmds.length === 3 || cmds.length === 5, `NG commands: ${cmds.join(' ')}`);
});

test('plain RTP phone calls an SDES-SRTP phone through Kamailio (offer turned into RTP/SAVP, SDES-pad): each hears the other', { timeout: 60_000 }, async (t) => {
  const missing = missingFor(SDES);
  if (missing.length) { t.skip(`${missing.join(', ')} not installed (Debian packages; .ci/run installs them)`); return; }
  // rtprelay (as rtpengine) offers the full suite list, strongest first, with unpadded base64 keys;
  // baresip 1.0 (libre 1.1) picks AEAD_AES_256_GCM, whose 44-byte key||salt needs one '=' of
  // padding, and its base64 decoder drops an unpadded tail ("srtp keylen is 42 (should be 44)"):
  // alice could not decrypt. rtpengine's `SDES-pad` keeps the padding, as an operator would set for
  // such phones; without it this test fails exactly that way.
  const s = await setup(t, SDES, ';mediaenc=srtp-mand', 'RTP/SAVP SDES-pad');
  const callId = await secureCall(t, s, /^RTP\/SAVP$/, 'bob');
  const cmds = ngRequests(s, callId).map((l) => String(l.command)).filter((c) => c !== 'query');
  assert.deepEqual(cmds, ['offer', 'answer', 'delete'], `NG commands: ${cmds.join(' ')}`);
  assert.match(s.a.proc.out(), /SRTP is Enabled \(cryptosuite=AEAD_AES_256_GCM\)/, `alice's baresip chose rtprelay's first suite\n${s.a.proc.out()}`);
  assert.doesNotMatch(s.a.proc.out(), /srtp keylen is/, `alice's baresip took rtprelay's key\n${s.a.proc.out()}`);
});

test('plain RTP phone calls a DTLS-SRTP phone with ICE through Kamailio (UDP/TLS/RTP/SAVPF ICE=force): each hears the other', { timeout: 60_000 }, async (t) => {
  const ns = iceNetns(t);
  if (!ns) return;
  const s = await setup(t, DTLS_ICE, ';mediaenc=dtls_srtp;medianat=ice', 'UDP/TLS/RTP/SAVPF ICE=force', ns);
  const callId = await secureCall(t, s, /^UDP\/TLS\/RTP\/SAVPF?$/, 'bob');
  const events = s.d.logs.filter((l) => l.callId === callId && (l.msg === 'ice' || l.msg === 'dtls'));
  t.diagnostic(`ICE/DTLS events: ${events.map((e) => `${e.msg}:${e.state}`).join(' ')}`);
  assert.ok(events.some((e) => e.msg === 'dtls' && e.state === 'connected'), `DTLS connected: ${JSON.stringify(events)}\n${s.diag()}`);
  assert.ok(events.some((e) => e.msg === 'ice' && e.state === 'connected'), `ICE connected: ${JSON.stringify(events)}`);
  assert.ok(!events.some((e) => e.state === 'failed'), `no ICE/DTLS failure: ${JSON.stringify(events)}`);
  assertIceInNetns(events, ns);
  // Here baresip is the DTLS client and offers GCM first; rtprelay, the server, takes it.
  assert.match(s.a.proc.out(), /DTLS-SRTP complete \(audio\/RTP\) Profile=AEAD_AES_128_GCM/, `alice's baresip completed DTLS-SRTP with rtprelay\n${s.a.proc.out()}`);
});
