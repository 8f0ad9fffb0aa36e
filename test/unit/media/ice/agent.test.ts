import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IceAgent, CONSENT_TIMEOUT_MS, TA_MS } from '../../../../media/ice/agent.js';
import { buildBindingRequest, buildStun, parseStun, STUN_TYPE, type StunMessage } from '../../../../media/ice/stun.js';
import type { Endpoint, SocketIce } from '../../../../media/plane.js';

const CFG: SocketIce = {
  localUfrag: 'L', localPwd: 'localpassword-0123456789', remoteUfrag: 'R', remotePwd: 'remotepassword-012345678',
  controlling: true, lite: false,
  candidates: [{ foundation: '1', component: 1, priority: 1000, address: '127.0.0.1', port: 5000, type: 'host' }],
};

function host() {
  const sent: { msg: StunMessage; address: string; port: number }[] = [];
  const selected: (Endpoint | null)[] = [];
  const states: string[] = [];
  return {
    sent, selected, states,
    h: { send: (b: Buffer, address: string, port: number) => { sent.push({ msg: parseStun(b)!, address, port }); }, onSelected: (r: Endpoint | null) => { selected.push(r); }, onState: (s: 'connected' | 'failed') => { states.push(s); } },
  };
}

test('role conflict: controlling with the larger tie-breaker answers 487; with the smaller it becomes controlled', () => {
  const a = host();
  const big = new IceAgent(CFG, 1, a.h, 0, 10n);
  const req = buildBindingRequest({ username: 'L:R', password: CFG.localPwd, priority: 1, controlling: 5n });
  big.onStun(parseStun(req.message)!, '127.0.0.1', 5000, 0);
  assert.equal(a.sent[0]!.msg.type, STUN_TYPE.bindingError);
  assert.equal(a.sent[0]!.msg.errorCode?.code, 487);
  assert.equal(big.isControlling, true);
  const b = host();
  const small = new IceAgent(CFG, 1, b.h, 0, 1n);
  small.onStun(parseStun(req.message)!, '127.0.0.1', 5000, 0);
  assert.equal(b.sent[0]!.msg.type, STUN_TYPE.bindingSuccess);
  assert.equal(small.isControlling, false);
});

test('full ICE: paced checks with bounded retransmissions, then failed', () => {
  const a = host();
  const agent = new IceAgent(CFG, 1, a.h, 0, 1n);
  for (let now = 0; now <= 60_000; now += TA_MS) agent.tick(now);
  const checks = a.sent.filter((s) => s.msg.type === STUN_TYPE.bindingRequest);
  assert.ok(checks.length >= 2 && checks.length <= 7, `${checks.length} sends`);
  assert.deepEqual(a.states, ['failed']);
});

test('consent freshness: checks on the selected pair, consent lost after 30 s without answers', () => {
  const a = host();
  const agent = new IceAgent(CFG, 1, a.h, 0, 1n);
  let now = 0;
  const answerAll = (): void => {
    for (const s of a.sent.splice(0)) {
      if (s.msg.type !== STUN_TYPE.bindingRequest) continue;
      agent.onStun(parseStun(buildStun(STUN_TYPE.bindingSuccess, s.msg.transactionId, [], CFG.remotePwd!))!, s.address, s.port, now);
    }
  };
  for (; now < 2000 && agent.state !== 'connected'; now += TA_MS) { agent.tick(now); answerAll(); }
  assert.equal(agent.state, 'connected');
  assert.deepEqual(agent.selected, { address: '127.0.0.1', port: 5000 });
  // Answered consent checks keep it; then silence for 30 s ends it.
  const until = now + 20_000;
  let consentChecks = 0;
  for (; now < until; now += TA_MS) { agent.tick(now); consentChecks += a.sent.length; answerAll(); }
  assert.ok(consentChecks >= 3, `${consentChecks} consent checks in 20 s`);
  assert.equal(agent.state, 'connected');
  const end = now + CONSENT_TIMEOUT_MS + 1000;
  for (; now < end && agent.state === 'connected'; now += TA_MS) { agent.tick(now); a.sent.length = 0; }
  assert.equal(agent.state, 'failed');
  assert.equal(a.selected.at(-1), null);
});
