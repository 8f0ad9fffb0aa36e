// The option table: one list feeds the INI file, the environment, the command line and --help.
// Names and syntax are rtpengine's so that an operator switches by changing one line of a unit file.

export type OptionType =
  | 'string' | 'int' | 'seconds' | 'bool' | 'endpoint' | 'endpoint-list' | 'interface-list' | 'level';

export interface OptionSpec {
  readonly key: string;
  readonly type: OptionType;
  readonly default?: string | number | boolean;
  readonly help: string;
  /** Accepted for compatibility with rtpengine, not implemented yet: warns, never fails. */
  readonly unimplemented?: boolean;
  /** Short alias as rtpengine has it (-i for --interface …). */
  readonly short?: string;
  /** May be given several times (command line) or as a `;` list (file). */
  readonly repeatable?: boolean;
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'config-file', type: 'string', help: 'INI file to read ("none": no file). Default: /etc/rtprelay/rtprelay.conf if it exists' },
  { key: 'config-section', type: 'string', default: 'rtpengine', help: 'section of the config file to read' },
  { key: 'interface', short: 'i', type: 'interface-list', repeatable: true, help: 'local media address: ADDR, NAME/ADDR, ADDR!ADVERTISED (repeatable; one name may hold IPv4 and IPv6)' },
  { key: 'listen-ng', short: 'n', type: 'endpoint-list', repeatable: true, default: '127.0.0.1:2223', help: 'UDP address for NG commands ([ADDR:]PORT)' },
  { key: 'listen-tcp-ng', short: 'N', type: 'endpoint-list', repeatable: true, help: 'TCP address for NG commands ([ADDR:]PORT)' },
  { key: 'listen-http', type: 'endpoint-list', repeatable: true, help: 'HTTP/WebSocket address for NG over HTTP and the admin API ([ADDR:]PORT)' },
  { key: 'port-min', short: 'm', type: 'int', default: 30000, help: 'lowest media port' },
  { key: 'port-max', short: 'M', type: 'int', default: 40000, help: 'highest media port' },
  { key: 'timeout', short: 'o', type: 'seconds', default: 60, help: 'end a call after this many seconds without media' },
  { key: 'silent-timeout', short: 's', type: 'seconds', default: 3600, help: 'the same for calls whose media is on hold' },
  { key: 'final-timeout', short: 'a', type: 'seconds', default: 0, help: 'end any call after this long (0: never)' },
  { key: 'offer-timeout', type: 'seconds', default: 3600, help: 'end a call whose offer was never answered after this long' },
  { key: 'delete-delay', short: 'd', type: 'seconds', default: 30, help: 'keep a deleted call (and its ports) this long' },
  { key: 'max-sessions', type: 'int', default: -1, help: 'refuse new calls past this many (-1: no limit)' },
  { key: 'log-level', short: 'L', type: 'level', default: 6, help: 'syslog level 0-7 (6: info, 7: debug)' },
  { key: 'log-stderr', short: 'E', type: 'bool', default: false, help: 'log to stderr (otherwise stdout)' },
  { key: 'foreground', short: 'f', type: 'bool', default: false, help: 'accepted for rtpengine compatibility: rtprelay always runs in the foreground' },
  { key: 'pidfile', short: 'p', type: 'string', help: 'write the process id to this file' },
  { key: 'sip-source', type: 'bool', default: false, help: 'use the SIP source address (received-from) by default, not the SDP address' },
  { key: 'media-workers', type: 'string', default: 'auto', help: 'media worker threads, each with its own share of the port range and its own sockets (0: relay in the main thread; auto: one per core but one, at least one)' },
  { key: 'call-threads', type: 'string', default: '0', help: 'call threads, each holding the calls whose call-id hashes to it, with their media sockets on its own share of the port range, and answering their NG commands (0: calls in the main thread, media in --media-workers; auto: one per core); the main thread routes NG and answers ping, list, statistics' },
  { key: 'socket-io', type: 'string', default: 'auto', help: 'media socket layer: native (batched recvmmsg/sendto addon), dgram (node:dgram), auto (native when built)' },
  { key: 'socket-park', type: 'seconds', default: 30, help: "keep a freed media port's socket bound this long, so a call given the port again uses it instead of binding a new one (native socket layer; within the open-file limit; 0: close at once)" },
  { key: 'state-dir', type: 'string', default: './state', help: 'directory for local state' },
  // Operations (rtprelay's own): database, instance identity, admin HTTP, shutdown.
  { key: 'db-url', type: 'string', help: 'database: sqlite:PATH, postgres://…, mysql://…, or none (default: sqlite under --state-dir)' },
  { key: 'instance-url', type: 'string', help: "this instance's NG URL as Kamailio's rtpengine table holds it (default: udp:ADDR:PORT of --listen-ng)" },
  { key: 'instance-name', type: 'string', help: "this instance's name in the instances table (default: the host name)" },
  { key: 'instance-setid', type: 'int', default: 0, help: "set id of this instance's row in Kamailio's rtpengine table" },
  { key: 'http-token', type: 'string', help: 'bearer token required by the HTTP admin API (needed when --listen-http is off loopback)' },
  { key: 'shutdown-timeout', type: 'seconds', default: 3600, help: 'on SIGTERM, wait this long for running calls to end (a second signal exits at once)' },
  { key: 'call-record-days', type: 'int', default: 30, help: 'keep call records this many days (0: for ever)' },
  { key: 'kamailio-rpc-url', type: 'string', help: "Kamailio's JSON-RPC URL (jsonrpcs), asked to rtpengine.reload when instances are added or removed" },
  // Call recording, in rtpengine's spelling (see README, Recording and statistics).
  { key: 'recording-dir', type: 'string', help: 'directory for call recordings (pcap, WAV per party and mixed, metadata JSON); no recording without it' },
  { key: 'recording-method', type: 'string', default: 'pcap', help: 'pcap (rtprelay writes the files itself; rtpengine\'s proc is accepted and does the same)' },
  { key: 'recording-format', type: 'string', default: 'raw', help: 'pcap link type: raw (IP packets; eth is accepted and written as raw)' },
  // Accepted so that an rtpengine 10.5 command line or config file runs unchanged; not implemented (yet).
  // The lists follow `rtpengine --help`: options that take a value, then flags (which never take one).
  ...unimplemented('string', [
    't:table', 'log-facility', 'max-log-line-length', 'thread-stack', 'k:subscribe-keyspace', 'l:listen-tcp',
    'u:listen-udp', 'c:listen-cli', 'g:graphite', 'G:graphite-interval', 'graphite-prefix', 'graphite-timeout', 'T:tos',
    'control-tos', 'r:redis', 'w:redis-write', 'redis-num-threads', 'redis-expires', 'redis-allowed-errors',
    'redis-disable-time', 'redis-cmd-timeout', 'redis-connect-timeout', 'b:b2b-url', 'log-facility-cdr',
    'log-facility-rtcp', 'log-facility-dtmf', 'dtmf-log-dest', 'log-format', 'x:xmlrpc-format', 'num-threads',
    'media-num-threads', 'max-load', 'max-cpu', 'max-bandwidth', 'homer', 'homer-protocol', 'homer-id', 'iptables-chain', 'scheduling', 'priority', 'idle-scheduling',
    'idle-priority', 'mysql-host', 'mysql-port', 'mysql-user', 'mysql-pass', 'mysql-query', 'endpoint-learning',
    'jitter-buffer', 'dtls-rsa-key-size', 'dtls-cert-cipher', 'dtls-mtu', 'dtls-ciphers', 'dtls-signature',
    'listen-https', 'https-cert', 'https-key', 'http-threads', 'software-id', 'dtx-delay', 'max-dtx', 'dtx-buffer',
    'dtx-lag', 'dtx-shift', 'dtx-cn-params', 'amr-dtx', 'silence-detect', 'cn-payload', 'mqtt-host', 'mqtt-port',
    'mqtt-id', 'mqtt-keepalive', 'mqtt-user', 'mqtt-pass', 'mqtt-cafile', 'mqtt-capath', 'mqtt-certfile',
    'mqtt-keyfile', 'mqtt-publish-qos', 'mqtt-publish-topic', 'mqtt-publish-interval', 'mqtt-publish-scope', 'mos',
    'socket-cpu-affinity', 'janus-secret',
  ]),
  ...unimplemented('bool', [
    'split-logs', 'no-log-timestamps', 'log-mark-prefix', 'log-mark-suffix', 'F:no-fallback', 'S:save-interface-ports',
    'q:no-redis-required', 'y:redis-delete-async', 'redis-delete-async-interval', 'active-switchover',
    'dtmf-log-ng-tcp', 'dtmf-no-suppress', 'dtmf-digit-delay', 'dtls-passive', 'log-srtp-keys', 'jb-clock-drift',
    'debug-srtp', 'reject-invalid-sdp', 'poller-per-thread', 'codecs',
  ]),
];

/** `S:key` entries: rtpengine's short alias S, then the long name. */
function unimplemented(type: 'string' | 'bool', entries: readonly string[]): OptionSpec[] {
  return entries.map((e) => {
    const [short, key] = e.includes(':') ? e.split(':') as [string, string] : [undefined, e];
    return { key, short, type, unimplemented: true, help: 'rtpengine option, accepted and ignored' };
  });
}

/** rtpengine's log levels per subsystem (`log-level-core`, …): accepted, folded into one level for now. */
export const SUBSYSTEM_LOG_LEVELS = [
  'core', 'spandsp', 'ffmpeg', 'transcoding', 'codec', 'rtcp', 'ice', 'crypto', 'srtp', 'internals',
  'http', 'control', 'dtx',
] as const;
