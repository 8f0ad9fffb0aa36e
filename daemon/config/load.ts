// Builds the one frozen Config from defaults < config file < environment < command line.
// The only module that reads process.env or the config file; everything else gets its slice.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os, { hostname, networkInterfaces } from 'node:os';
import { OPTIONS, SUBSYSTEM_LOG_LEVELS, type OptionSpec } from './options.js';
import { PREBIND_PAIRS, READY_PAIRS } from '../../media/plane.js';

export interface Endpoint { readonly address: string; readonly port: number }

export interface InterfaceAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** Written into SDP instead of `address` (ADDR!ADVERTISED). */
  readonly advertised: string;
}

export interface LogicalInterface {
  readonly name: string;
  readonly addresses: readonly InterfaceAddress[];
}

export interface Config {
  readonly interfaces: readonly LogicalInterface[];
  readonly listenNg: readonly Endpoint[];
  readonly listenTcpNg: readonly Endpoint[];
  readonly listenHttp: readonly Endpoint[];
  readonly ports: { readonly min: number; readonly max: number };
  /** Media worker threads; 0 relays in the main thread. */
  readonly mediaWorkers: number;
  /** Call threads (0: the session core in the main thread). */
  readonly callThreads: number;
  /** Media socket layer (media/udp.ts). */
  readonly socketIo: 'auto' | 'native' | 'dgram';
  /** Seconds a freed port's socket stays bound for reuse (media/udp.ts, SocketPark); 0: closed at once. */
  readonly socketParkS: number;
  /** RTPRELAY_TEST_HOOKS=1: SIGUSR2 crashes media worker 0 (integration tests only). */
  readonly testHooks: boolean;
  readonly timeouts: {
    readonly timeoutS: number; readonly silentTimeoutS: number; readonly finalTimeoutS: number;
    readonly offerTimeoutS: number; readonly deleteDelayS: number;
  };
  readonly maxSessions: number;
  readonly sipSource: boolean;
  readonly log: { readonly level: string; readonly stderr: boolean };
  readonly pidfile: string | null;
  readonly stateDir: string;
  readonly operations: {
    readonly dbUrl: string | null;
    readonly instanceUrl: string | null;
    readonly instanceName: string;
    readonly setid: number;
    readonly httpToken: string | null;
    readonly shutdownTimeoutS: number;
    readonly recordDays: number;
    readonly kamailioRpcUrl: string | null;
  };
  /** Call recording: files under `dir` (null: recording requests are logged and ignored). */
  readonly recording: { readonly dir: string | null; readonly method: 'pcap'; readonly format: 'raw' };
  /** Things worth one line at start (ignored rtpengine options, …). */
  readonly warnings: readonly string[];
}

export class ConfigError extends Error {}

const DEFAULT_CONFIG_FILE = '/etc/rtprelay/rtprelay.conf';

type Raw = Map<string, string[]>;

const byKey = new Map<string, OptionSpec>();
const byShort = new Map<string, OptionSpec>();
for (const o of OPTIONS) {
  byKey.set(o.key, o);
  if (o.short) byShort.set(o.short, o);
}
for (const s of SUBSYSTEM_LOG_LEVELS) {
  byKey.set(`log-level-${s}`, { key: `log-level-${s}`, type: 'level', help: `log level of the ${s} subsystem` });
}

function put(raw: Raw, spec: OptionSpec, value: string, append: boolean): void {
  const prev = raw.get(spec.key);
  if (spec.repeatable && append && prev) prev.push(value);
  else raw.set(spec.key, [value]);
}

/** Command line, rtpengine (GLib) style: --key=value, --key value, -k value, -kvalue, --bool. */
export function parseArgv(argv: readonly string[]): { raw: Raw; help: boolean; version: boolean } {
  const raw: Raw = new Map();
  let help = false, version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (arg === '--version' || arg === '-v') { version = true; continue; }
    let spec: OptionSpec | undefined;
    let value: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      spec = byKey.get(name);
      if (!spec) throw new ConfigError(`unknown option --${name} (see --help)`);
      if (eq >= 0) value = arg.slice(eq + 1);
    } else if (arg.startsWith('-') && arg.length >= 2) {
      spec = byShort.get(arg[1]!);
      if (!spec) throw new ConfigError(`unknown option ${arg} (see --help)`);
      if (arg.length > 2) value = arg.slice(2);
    } else {
      throw new ConfigError(`unexpected argument "${arg}"`);
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.type === 'bool') value = 'true';
      else if (next !== undefined && (!next.startsWith('-') || /^-\d+$/.test(next))) { value = next; i++; }
      else if (spec.unimplemented) value = 'true';
      else throw new ConfigError(`option --${spec.key} needs a value`);
    }
    put(raw, spec, value, true);
  }
  return { raw, help, version };
}

/**
 * GLib key file as rtpengine reads it: `[section]`, `key = value`, `#` comments, `;` separated
 * lists, `\s \n \t \r \\` escapes. Like rtpengine, keys it does not know are ignored (we warn),
 * so a config file written for a newer rtpengine still starts.
 */
export function parseIni(text: string, section: string): { raw: Raw; warnings: string[] } {
  const raw: Raw = new Map();
  const warnings: string[] = [];
  let current = '';
  text.split(/\r?\n/).forEach((line, n) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    if (t.startsWith('[')) {
      if (!t.endsWith(']')) throw new ConfigError(`config file line ${n + 1}: bad section header`);
      current = t.slice(1, -1).trim();
      return;
    }
    if (current !== section) return;
    const eq = t.indexOf('=');
    if (eq < 0) throw new ConfigError(`config file line ${n + 1}: expected key = value`);
    const key = t.slice(0, eq).trim();
    if (key.endsWith(']')) return; // a translation (`key[de] = …`): GLib's, never rtpengine's
    const spec = byKey.get(key);
    if (!spec) { warnings.push(`config file line ${n + 1}: unknown key "${key}" ignored`); return; }
    const value = t.slice(eq + 1).trim();
    raw.set(key, spec.repeatable ? splitList(value) : [unescape(value)]);
  });
  return { raw, warnings };
}

/** GLib list: `;` separates, `\;` is a literal semicolon; empty items (a trailing `;`) are dropped. */
function splitList(value: string): string[] {
  return value.split(/(?<!\\);/).map((v) => unescape(v.trim())).filter((v) => v !== '');
}

function unescape(v: string): string {
  return v.replace(/\\([sntr\\;])/g, (_, c: string) => ({ s: ' ', n: '\n', t: '\t', r: '\r' }[c] ?? c));
}

function fromEnv(env: NodeJS.ProcessEnv): Raw {
  const raw: Raw = new Map();
  for (const spec of byKey.values()) {
    const v = env['RTPRELAY_' + spec.key.toUpperCase().replace(/-/g, '_')];
    if (v !== undefined) raw.set(spec.key, spec.repeatable ? v.split(';').filter((x) => x !== '') : [v]);
  }
  return raw;
}

/**
 * --media-workers=auto: one media worker per core but one (the main thread serves NG, the
 * database and timers), and at least one, so control never waits behind packets.
 */
export function autoWorkers(cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(64, cores - 1));
}

function int(key: string, v: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(`--${key}: "${v}" is not a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`--${key}: ${n} is outside ${min}..${max}`);
  return n;
}

function bool(key: string, v: string): boolean {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(`--${key}: "${v}" is not a boolean`);
}

export function parseEndpoint(key: string, v: string, defaultAddress: string): Endpoint {
  const s = v.trim();
  let address = defaultAddress, portText = s;
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (m6) { address = m6[1]!; portText = m6[2]!; }
  else if (s.includes(':') && !/^\d+$/.test(s)) {
    const i = s.lastIndexOf(':');
    address = s.slice(0, i); portText = s.slice(i + 1);
  }
  if (address === 'localhost') address = '127.0.0.1';
  if (!isIP(address)) throw new ConfigError(`--${key}: "${v}" has no valid IP address`);
  return { address, port: int(key, portText, 0, 65535) };
}

/**
 * `ADDR`, `NAME/ADDR`, `ADDR!ADVERTISED`, `NAME/ADDR!ADVERTISED`; one name may be given several
 * times (IPv4 and IPv6 together). As in rtpengine, ADDR may also be a network device (`eth0`) or
 * `any`, standing for its addresses (IPv6 link-local ones left out: they need a scope).
 */
export function parseInterfaces(specs: readonly string[], devices = networkInterfaces()): LogicalInterface[] {
  const out = new Map<string, InterfaceAddress[]>();
  for (const spec of specs) {
    let rest = spec.trim(), name = 'default';
    const slash = rest.indexOf('/');
    if (slash >= 0) { name = rest.slice(0, slash); rest = rest.slice(slash + 1); }
    if (name === '' || !/^[\w.-]+$/.test(name)) throw new ConfigError(`--interface: bad interface name in "${spec}"`);
    const [addr = '', adv] = rest.split('!');
    if (adv !== undefined && isIP(adv) === 0) throw new ConfigError(`--interface: "${spec}" has no valid advertised address`);
    let addrs = [addr];
    if (isIP(addr) === 0) {
      const found = addr === 'any' ? Object.values(devices).flat() : devices[addr];
      addrs = (found ?? []).filter((a) => a && !a.address.startsWith('fe80:')).map((a) => a!.address);
      if (!addrs.length) throw new ConfigError(`--interface: "${spec}" is neither an IP address nor a network device with one`);
    }
    const list = out.get(name) ?? [];
    for (const a of addrs) {
      if (list.some((x) => x.address === a)) continue;
      list.push({ address: a, family: isIP(a) as 4 | 6, advertised: adv ?? a });
    }
    out.set(name, list);
  }
  return [...out].map(([name, addresses]) => ({ name, addresses }));
}

// syslog severities (rtpengine's --log-level) onto pino's levels.
const SYSLOG_TO_PINO = ['fatal', 'fatal', 'fatal', 'error', 'warn', 'info', 'info', 'debug'] as const;

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config | 'help' | 'version' {
  const cli = parseArgv(argv);
  if (cli.help) return 'help';
  if (cli.version) return 'version';
  const envRaw = fromEnv(env);
  const pick = (k: string): string[] | undefined => cli.raw.get(k) ?? envRaw.get(k);
  const fileName = pick('config-file')?.[0] ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : 'none');
  const section = pick('config-section')?.[0] ?? 'rtpengine';
  const warnings: string[] = [];
  let fileRaw: Raw = new Map();
  if (fileName !== 'none') {
    let text: string;
    try { text = readFileSync(fileName, 'utf8'); } catch (e) {
      throw new ConfigError(`cannot read config file ${fileName}: ${(e as Error).message}`);
    }
    const ini = parseIni(text, section);
    fileRaw = ini.raw;
    warnings.push(...ini.warnings.map((w) => `${fileName}: ${w}`));
  }
  const raw: Raw = new Map([...fileRaw, ...envRaw, ...cli.raw]);
  for (const [k] of raw) {
    const spec = byKey.get(k)!;
    if (spec.unimplemented) warnings.push(`option --${k} is not implemented by rtprelay and is ignored`);
  }
  const get = (k: string): string | undefined => raw.get(k)?.[0] ?? (byKey.get(k)?.default?.toString());
  const list = (k: string): string[] => raw.get(k) ?? (byKey.get(k)?.default !== undefined ? [String(byKey.get(k)!.default)] : []);

  const ifSpecs = list('interface');
  const interfaces = parseInterfaces(ifSpecs.length ? ifSpecs : ['127.0.0.1']);
  const portMin = int('port-min', get('port-min')!, 1, 65535);
  const portMax = int('port-max', get('port-max')!, 1, 65535);
  if (portMax < portMin + 1) throw new ConfigError(`--port-max (${portMax}) must be above --port-min (${portMin})`);
  const seconds = (k: string): number => int(k, get(k)!, 0, 10 * 365 * 86400);
  const level = int('log-level', get('log-level')!, 0, 7);
  for (const s of SUBSYSTEM_LOG_LEVELS) {
    const v = get(`log-level-${s}`);
    if (v !== undefined) int(`log-level-${s}`, v, 0, 7);
  }
  const socketIo = get('socket-io')!;
  if (socketIo !== 'auto' && socketIo !== 'native' && socketIo !== 'dgram') throw new ConfigError(`--socket-io: "${socketIo}" is not auto, native or dgram`);
  const cfg: Config = {
    interfaces,
    listenNg: list('listen-ng').map((v) => parseEndpoint('listen-ng', v, '0.0.0.0')),
    listenTcpNg: list('listen-tcp-ng').map((v) => parseEndpoint('listen-tcp-ng', v, '0.0.0.0')),
    listenHttp: list('listen-http').map((v) => parseEndpoint('listen-http', v, '127.0.0.1')),
    ports: { min: portMin, max: portMax },
    mediaWorkers: get('media-workers') === 'auto' ? autoWorkers() : int('media-workers', get('media-workers')!, 0, 64),
    callThreads: get('call-threads') === 'auto' ? Math.max(1, Math.min(64, os.availableParallelism())) : int('call-threads', get('call-threads')!, 0, 64),
    socketIo,
    socketParkS: seconds('socket-park'),
    testHooks: env.RTPRELAY_TEST_HOOKS === '1',
    timeouts: {
      timeoutS: seconds('timeout'), silentTimeoutS: seconds('silent-timeout'), finalTimeoutS: seconds('final-timeout'),
      offerTimeoutS: seconds('offer-timeout'), deleteDelayS: seconds('delete-delay'),
    },
    maxSessions: int('max-sessions', get('max-sessions')!, -1, 10_000_000),
    sipSource: bool('sip-source', get('sip-source')!),
    log: { level: SYSLOG_TO_PINO[level]!, stderr: bool('log-stderr', get('log-stderr')!) },
    pidfile: get('pidfile') ?? null,
    stateDir: get('state-dir')!,
    operations: {
      dbUrl: dbUrl(get('db-url')),
      instanceUrl: get('instance-url') ?? null,
      instanceName: get('instance-name') ?? hostname(),
      setid: int('instance-setid', get('instance-setid')!, 0, 2 ** 31 - 1),
      httpToken: get('http-token') || null,
      shutdownTimeoutS: seconds('shutdown-timeout'),
      recordDays: int('call-record-days', get('call-record-days')!, 0, 100_000),
      kamailioRpcUrl: get('kamailio-rpc-url') ?? null,
    },
    recording: recordingConfig(get, warnings),
    warnings,
  };
  bool('foreground', get('foreground')!);
  return deepFreeze(cfg);
}

/** --recording-dir/-method/-format, in rtpengine's spirit: we always write the files ourselves. */
function recordingConfig(get: (k: string) => string | undefined, warnings: string[]): Config['recording'] {
  const method = get('recording-method')!;
  if (method === 'proc') warnings.push('option --recording-method proc: rtprelay has no recording daemon and writes the files itself (as pcap)');
  else if (method !== 'pcap') throw new ConfigError(`--recording-method: "${method}" is not pcap or proc`);
  const format = get('recording-format')!;
  if (format === 'eth') warnings.push('option --recording-format eth: pcap files are written with raw IP packets (LINKTYPE_RAW)');
  else if (format !== 'raw') throw new ConfigError(`--recording-format: "${format}" is not raw or eth`);
  return { dir: get('recording-dir') || null, method: 'pcap', format: 'raw' };
}

function dbUrl(v: string | undefined): string | null {
  if (v === undefined || v === '') return null;
  if (v === 'none' || /^sqlite:.+/.test(v) || /^(postgres|postgresql|mysql):\/\/.+/.test(v)) return v;
  throw new ConfigError(`--db-url: "${v}" is not sqlite:PATH, postgres://…, mysql://… or none`);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function helpText(): string {
  const lines = ['Usage: rtprelay [OPTION…]', '', 'Options (also in the config file [rtpengine] section, or as RTPRELAY_KEY env):'];
  for (const o of OPTIONS) {
    if (o.unimplemented) continue;
    const short = o.short ? `-${o.short}, ` : '    ';
    const def = o.default !== undefined ? ` (default: ${o.default})` : '';
    lines.push(`  ${short}--${o.key.padEnd(16)} ${o.help}${def}`);
  }
  lines.push('', 'Also accepted and ignored, for rtpengine compatibility: --table, kernel, recording, redis … options.');
  return lines.join('\n');
}

/**
 * How many sockets (open and parked) each media plane may hold so that parked sockets never take
 * the descriptors the daemon keeps for itself (callCapacity's reserve); Infinity when the open-file
 * limit is unknown. A bind that meets the limit anyway closes its thread's parked sockets first.
 */
export function planeSocketBudget(cfg: Pick<Config, 'ports' | 'mediaWorkers' | 'callThreads'>, addressCount: number, fileLimit: number | null): number {
  const { byFiles } = callCapacity(cfg, addressCount, fileLimit);
  return byFiles === Infinity ? Infinity : Math.floor((byFiles * 4) / planeCount(cfg));
}

/** Threads with media sockets of their own: the call threads, else the media workers, else the main thread. */
function planeCount(cfg: Pick<Config, 'mediaWorkers' | 'callThreads'>): number {
  return cfg.callThreads > 0 ? cfg.callThreads : Math.max(1, cfg.mediaWorkers);
}

/** Sockets each media plane (the main thread, a media worker or a call thread) keeps bound ahead, per address. */
export const AHEAD_SOCKETS_PER_PLANE = 2 * (PREBIND_PAIRS + READY_PAIRS);

/**
 * How many audio calls the port range and the open-file limit each allow (4 sockets a call: a
 * pair towards each party); Infinity when the file limit is unknown. 100 descriptors are kept for
 * the daemon itself, and each plane's sockets bound ahead come off the file limit too.
 */
export function callCapacity(cfg: Pick<Config, 'ports' | 'mediaWorkers' | 'callThreads'>, addressCount: number, fileLimit: number | null): { byPorts: number; byFiles: number } {
  const first = cfg.ports.min % 2 === 0 ? cfg.ports.min : cfg.ports.min + 1;
  const pairs = Math.floor((cfg.ports.max - first + 1) / 2);
  const addresses = Math.max(1, addressCount);
  // One audio call: a pair towards each party, on one address each.
  const byPorts = Math.floor((pairs * addresses) / 2);
  const reserved = 100 + planeCount(cfg) * addresses * AHEAD_SOCKETS_PER_PLANE;
  const byFiles = fileLimit === null || fileLimit === Infinity ? Infinity : Math.max(0, Math.floor((fileLimit - reserved) / 4));
  return { byPorts, byFiles };
}
