import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { callCapacity, ConfigError, loadConfig, parseArgv, parseEndpoint, parseIni, parseInterfaces, type Config } from '../../../daemon/config/load.js';

function load(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const c = loadConfig(argv, env);
  assert.ok(typeof c === 'object');
  return c;
}

function tmpFile(text: string): string {
  const f = path.join(mkdtempSync(path.join(tmpdir(), 'rtprelay-cfg-')), 'rtpengine.conf');
  writeFileSync(f, text);
  return f;
}

test('parseArgv takes GLib forms: --k=v, --k v, -k v, -kv, flags, negative numbers', () => {
  const { raw } = parseArgv(['--port-min=1000', '--port-max', '2000', '-o', '5', '-d3', '--foreground', '--table', '-1', '-i', 'a/127.0.0.1', '--interface=::1']);
  assert.deepEqual(raw.get('port-min'), ['1000']);
  assert.deepEqual(raw.get('port-max'), ['2000']);
  assert.deepEqual(raw.get('timeout'), ['5']);
  assert.deepEqual(raw.get('delete-delay'), ['3']);
  assert.deepEqual(raw.get('foreground'), ['true']);
  assert.deepEqual(raw.get('table'), ['-1']);
  assert.deepEqual(raw.get('interface'), ['a/127.0.0.1', '::1']);
});

test('rtpengine short options mean what they mean in rtpengine (-o timeout, -T tos)', () => {
  assert.deepEqual(parseArgv(['-T', '184']).raw.get('tos'), ['184']);
  assert.equal(parseArgv(['-T', '184']).raw.has('timeout'), false);
  assert.equal(load(['--config-file=none', '-o', '7']).timeouts.timeoutS, 7);
});

test('flag options never swallow the next argument', () => {
  const { raw } = parseArgv(['--no-fallback', '--port-min', '4000', '-F', '--log-stderr']);
  assert.deepEqual(raw.get('no-fallback'), ['true']);
  assert.deepEqual(raw.get('port-min'), ['4000']);
  assert.deepEqual(raw.get('log-stderr'), ['true']);
});

test('unknown command-line options are errors, as in rtpengine', () => {
  assert.throws(() => parseArgv(['--bogus']), ConfigError);
  assert.throws(() => parseArgv(['--port-min']), /needs a value/);
});

test('the rtpengine command line from the issue loads, with warnings for what is not implemented', () => {
  const c = load(['--config-file=none', '--table=-1', '--foreground', '--log-stderr', '--interface=127.0.0.1',
    '--interface=::1', '--listen-ng=127.0.0.1:2223', '--port-min=30000', '--port-max=30999', '--delete-delay=0']);
  assert.deepEqual(c.interfaces, [{ name: 'default', addresses: [
    { address: '127.0.0.1', family: 4, advertised: '127.0.0.1' }, { address: '::1', family: 6, advertised: '::1' }] }]);
  assert.deepEqual(c.listenNg, [{ address: '127.0.0.1', port: 2223 }]);
  assert.deepEqual(c.ports, { min: 30000, max: 30999 });
  assert.equal(c.timeouts.deleteDelayS, 0);
  assert.equal(c.log.stderr, true);
  assert.deepEqual(c.warnings, ['option --table is not implemented by rtprelay and is ignored']);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.timeouts));
});

test('defaults match rtpengine 10.5', () => {
  const c = load(['--config-file=none']);
  assert.deepEqual(c.timeouts, { timeoutS: 60, silentTimeoutS: 3600, finalTimeoutS: 0, offerTimeoutS: 3600, deleteDelayS: 30 });
  assert.equal(c.maxSessions, -1);
  assert.deepEqual(c.listenNg, [{ address: '127.0.0.1', port: 2223 }]);
  assert.equal(c.log.level, 'info');
});

test('bad values stop the start with a message naming the option', () => {
  assert.throws(() => load(['--config-file=none', '--timeout=abc']), /--timeout: "abc" is not a whole number/);
  assert.throws(() => load(['--config-file=none', '--port-min=40000', '--port-max=30000']), /--port-max/);
  assert.throws(() => load(['--config-file=none', '--port-max=70000']), /--port-max: 70000 is outside/);
  assert.throws(() => load(['--config-file=none', '--log-level=9']), /--log-level/);
  assert.throws(() => load(['--config-file=none', '--interface=300.1.1.1']), /--interface/);
  assert.throws(() => load(['--config-file=none', '--listen-ng=nowhere:x']), /--listen-ng/);
  assert.throws(() => load(['--config-file=/nonexistent/rtp.conf']), /cannot read config file/);
});

test('interfaces: names, advertised addresses, one name for IPv4 and IPv6, devices and any', () => {
  const devices = {
    lo: [{ address: '127.0.0.1' }, { address: '::1' }],
    eth0: [{ address: '192.0.2.7' }, { address: 'fe80::1' }],
  } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
  assert.deepEqual(parseInterfaces(['int/10.0.0.1', 'ext/192.0.2.1!198.51.100.1', 'int/fd00::1'], devices), [
    { name: 'int', addresses: [{ address: '10.0.0.1', family: 4, advertised: '10.0.0.1' }, { address: 'fd00::1', family: 6, advertised: 'fd00::1' }] },
    { name: 'ext', addresses: [{ address: '192.0.2.1', family: 4, advertised: '198.51.100.1' }] },
  ]);
  assert.deepEqual(parseInterfaces(['pub/eth0'], devices)[0]!.addresses.map((a) => a.address), ['192.0.2.7']);
  assert.deepEqual(parseInterfaces(['any'], devices)[0]!.addresses.map((a) => a.address), ['127.0.0.1', '::1', '192.0.2.7']);
  assert.throws(() => parseInterfaces(['eth9'], devices), /neither an IP address nor a network device/);
  assert.throws(() => parseInterfaces(['bad name/127.0.0.1'], devices), /bad interface name/);
});

test('endpoints: port only, ADDR:PORT, [v6]:PORT, localhost', () => {
  assert.deepEqual(parseEndpoint('listen-ng', '2223', '0.0.0.0'), { address: '0.0.0.0', port: 2223 });
  assert.deepEqual(parseEndpoint('listen-ng', 'localhost:2223', '0.0.0.0'), { address: '127.0.0.1', port: 2223 });
  assert.deepEqual(parseEndpoint('listen-ng', '[::1]:2223', '0.0.0.0'), { address: '::1', port: 2223 });
});

test('parseIni reads a GLib key file: its section only, ; lists, escapes, unknown keys as warnings', () => {
  const ini = parseIni([
    '# comment', '[other]', 'port-min = 1', 'not a key value line', '[rtpengine]', 'table = 0',
    'interface = internal/12.23.34.45;external/23.34.45.54!1.2.3.4;', 'listen-ng = localhost:2223',
    'software-id = my\\sengine', 'bogus-key = 1', 'port-min = 30000', 'port-min = 31000', '',
  ].join('\n'), 'rtpengine');
  assert.deepEqual(ini.raw.get('interface'), ['internal/12.23.34.45', 'external/23.34.45.54!1.2.3.4']);
  assert.deepEqual(ini.raw.get('port-min'), ['31000'], 'the last of a repeated key wins, as in GLib');
  assert.deepEqual(ini.raw.get('software-id'), ['my engine']);
  assert.deepEqual(ini.warnings, ['config file line 10: unknown key "bogus-key" ignored']);
  assert.throws(() => parseIni('[rtpengine]\njust words\n', 'rtpengine'), /line 2: expected key = value/);
});

test('Debian\'s shipped /etc/rtpengine/rtpengine.conf loads (section rtpengine and rtpengine-testing)', (t) => {
  let text: string;
  try { text = readFileSync('/etc/rtpengine/rtpengine.conf', 'utf8'); } catch { return t.skip('rtpengine.conf not installed'); }
  const c = load([`--config-file=${tmpFile(text)}`]);
  assert.deepEqual(c.listenNg, [{ address: '127.0.0.1', port: 2223 }]);
  assert.deepEqual(c.ports, { min: 30000, max: 40000 });
  assert.equal(c.timeouts.timeoutS, 60);
  assert.ok(c.interfaces[0]!.addresses.length > 0, '"interface = any" gives this machine\'s addresses');
  assert.ok(c.warnings.some((w) => w.includes('--table')));
  // Recording is implemented: Debian's recording-dir is taken; its `proc` method warns (we write pcap ourselves).
  assert.equal(c.recording.dir, '/var/spool/rtpengine');
  assert.ok(c.warnings.some((w) => w.includes('--recording-method proc')));
  const testing = load([`--config-file=${tmpFile(text)}`, '--config-section=rtpengine-testing', '--interface=127.0.0.1']);
  assert.deepEqual(testing.listenNg, [{ address: '0.0.0.0', port: 2223 }]);
  assert.equal(testing.log.level, 'debug');
  assert.equal(testing.log.stderr, true);
});

test('precedence: default < file < environment < command line', () => {
  const f = tmpFile('[rtpengine]\nport-min = 31000\nport-max = 39000\ntimeout = 10\nsilent-timeout = 20\ninterface = 127.0.0.2\n');
  const env = { RTPRELAY_PORT_MAX: '38000', RTPRELAY_TIMEOUT: '11' };
  const c = load([`--config-file=${f}`, '--timeout=12'], env);
  assert.equal(c.ports.min, 31000, 'file');
  assert.equal(c.ports.max, 38000, 'env over file');
  assert.equal(c.timeouts.timeoutS, 12, 'command line over env');
  assert.equal(c.timeouts.silentTimeoutS, 20, 'file over default');
  assert.equal(c.timeouts.finalTimeoutS, 0, 'default');
  assert.deepEqual(c.interfaces[0]!.addresses.map((a) => a.address), ['127.0.0.2']);
  // A repeatable option on the command line replaces the file's list instead of adding to it.
  assert.deepEqual(load([`--config-file=${f}`, '--interface=127.0.0.3']).interfaces[0]!.addresses.map((a) => a.address), ['127.0.0.3']);
  // The file can be named by the environment, and a section picked.
  const g = tmpFile('[rtpengine]\ntimeout = 1\n[mine]\ntimeout = 2\n');
  assert.equal(load([], { RTPRELAY_CONFIG_FILE: g, RTPRELAY_CONFIG_SECTION: 'mine' }).timeouts.timeoutS, 2);
  assert.equal(load([`--config-file=${g}`]).timeouts.timeoutS, 1);
});

test('callCapacity: calls the port range and the file limit allow, the sockets bound ahead taken off the file limit', () => {
  const ports = { min: 10000, max: 19999 }; // 5,000 pairs
  assert.deepEqual(callCapacity({ ports, mediaWorkers: 1, callThreads: 0 }, 1, 20000), { byPorts: 2500, byFiles: Math.floor((20000 - 100 - 96) / 4) });
  // Four workers on two addresses: twice the pairs, eight planes' worth of sockets bound ahead.
  assert.deepEqual(callCapacity({ ports, mediaWorkers: 4, callThreads: 0 }, 2, 20000), { byPorts: 5000, byFiles: Math.floor((20000 - 100 - 8 * 96) / 4) });
  // Call threads are the planes then; in-process (0 workers) is one.
  assert.equal(callCapacity({ ports, mediaWorkers: 4, callThreads: 2 }, 1, 1024).byFiles, Math.floor((1024 - 100 - 2 * 96) / 4));
  assert.equal(callCapacity({ ports, mediaWorkers: 0, callThreads: 0 }, 1, 1024).byFiles, Math.floor((1024 - 100 - 96) / 4));
  assert.equal(callCapacity({ ports, mediaWorkers: 1, callThreads: 0 }, 1, null).byFiles, Infinity);
});
