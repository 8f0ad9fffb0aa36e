// The instance state: the operator's wish (`wanted`) and the shutdown drain are kept apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Instance, type InstanceStateName } from '../../../daemon/instance.js';

const quiet = pino({ level: 'silent' });

function make(calls = 0) {
  const table = { acceptingNewCalls: true, calls, liveCalls() { return this.calls; } };
  const instance = new Instance(table, quiet);
  const changes: [InstanceStateName, string][] = [];
  instance.onChange((s) => changes.push([s, instance.wanted]));
  return { table, instance, changes };
}

test('a shutdown drain refuses new calls and shows draining, then drained, without changing what is wanted', () => {
  const { table, instance, changes } = make(1);
  instance.shutDown('test');
  assert.equal(instance.state, 'draining');
  assert.equal(instance.wanted, 'active');
  assert.equal(instance.shuttingDown, true);
  assert.equal(table.acceptingNewCalls, false);
  table.calls = 0;
  instance.check();
  assert.equal(instance.state, 'drained');
  assert.deepEqual(changes, [['draining', 'active'], ['drained', 'active']]);
  instance.shutDown('again');
  assert.equal(changes.length, 2, 'a second shutdown changes nothing');
});

test('an operator\'s request while shutting down is kept as the wish (and reported) but does not reopen the instance', () => {
  const { table, instance, changes } = make(0);
  instance.shutDown('test');
  assert.equal(instance.state, 'drained');
  instance.set('draining', 'http');
  assert.equal(instance.wanted, 'draining');
  assert.equal(instance.state, 'drained');
  assert.deepEqual(changes.at(-1), ['drained', 'draining'], 'listeners hear of the new wish');
  instance.set('active', 'http');
  assert.equal(instance.wanted, 'active');
  assert.equal(instance.state, 'drained', 'still shutting down: no new calls');
  assert.equal(table.acceptingNewCalls, false);
  instance.set('disabled', 'http');
  assert.equal(instance.state, 'disabled');
  assert.equal(table.acceptingNewCalls, false);
});

test('a disabled instance stays disabled through the shutdown; a draining one keeps draining', () => {
  const a = make(0);
  a.instance.set('disabled', 'http');
  a.instance.shutDown('test');
  assert.equal(a.instance.state, 'disabled');
  assert.equal(a.instance.wanted, 'disabled');
  const b = make(2);
  b.instance.set('draining', 'http');
  b.instance.shutDown('test');
  assert.equal(b.instance.state, 'draining');
  assert.equal(b.instance.wanted, 'draining');
  assert.equal(b.table.acceptingNewCalls, false);
});
