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
  { key: 'timeout', short: 'T', type: 'seconds', default: 60, help: 'end a call after this many seconds without media' },
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
  { key: 'state-dir', type: 'string', default: './state', help: 'directory for local state' },
  // Accepted so that an rtpengine command line runs unchanged; not implemented (yet).
  ...[
    'table', 'no-fallback', 'tos', 'control-tos', 'num-threads', 'media-num-threads', 'thread-stack',
    'log-facility', 'log-facility-cdr', 'log-facility-rtcp', 'log-facility-dtmf', 'log-format', 'log-mark-prefix',
    'log-mark-suffix', 'log-srtp-keys', 'recording-dir', 'recording-method', 'recording-format', 'redis',
    'redis-write', 'redis-num-threads', 'redis-expires', 'redis-allowed-errors', 'redis-disable-time',
    'redis-cmd-timeout', 'redis-connect-timeout', 'b2b-url', 'xmlrpc-format', 'homer', 'homer-protocol',
    'homer-id', 'graphite', 'graphite-interval', 'graphite-prefix', 'dtls-passive', 'iptables-chain',
    'listen-cli', 'listen-udp', 'listen-tcp', 'listen-https', 'https-cert', 'https-key', 'http-threads',
    'cpu-affinity', 'mysql-host', 'mysql-port', 'mysql-user', 'mysql-pass', 'mysql-query', 'dtmf-log-dest',
    'dtmf-log-ng-tcp', 'jitter-buffer', 'jb-clock-drift', 'save-interface-ports', 'endpoint-learning',
    'dtls-rsa-key-size', 'dtls-mtu', 'dtls-ciphers', 'dtls-signature', 'reject-invalid-sdp', 'max-load',
    'max-cpu', 'max-bandwidth', 'scheduling', 'priority', 'idle-scheduling', 'idle-priority',
    'mos', 'measure-rtp', 'rtcp-interval', 'socket-cpu-affinity', 'poller-per-thread', 'io-uring',
    'io-uring-buffers', 'janus-secret', 'use-audio-player', 'audio-buffer-length', 'audio-buffer-delay',
    'audio-player', 'dtx-delay', 'max-dtx', 'dtx-buffer', 'dtx-lag', 'dtx-shift', 'dtx-cn-params',
    'amr-dtx', 'silence-detect', 'cn-payload', 'player-cache', 'kernel-player', 'kernel-player-media',
    'preload-media-files', 'media-files-reload', 'preload-db-media', 'db-media-reload', 'preload-db-cache',
    'db-cache-reload', 'db-media-cache', 'vsc-start-rec', 'vsc-stop-rec', 'vsc-pause-rec', 'vsc-pause-resume-rec',
    'vsc-start-stop-rec', 'vsc-start-pause-resume-rec', 'moh-max-duration', 'moh-max-repeats',
    'moh-attr-name', 'moh-prevent-double-hold', 'timer-accuracy', 'evs-lib-path', 'codec-chain-lib-path',
    'codec-chain-runners', 'codec-chain-concurrency', 'codec-chain-async', 'codec-chain-opus-application',
    'codec-chain-opus-complexity', 'nftables-chain', 'nftables-base-chain', 'nftables-append',
    'nftables-family', 'nftables-start', 'nftables-stop', 'nftables-status', 'skip-recording-db',
    'dtls-cert-cipher', 'dtls-rsa-key-size', 'log-name', 'syslog-prefix', 'http-buf-size', 'hole-punch',
  ].map((key): OptionSpec => ({ key, type: 'string', unimplemented: true, help: 'rtpengine option, accepted and ignored' })),
];

/** rtpengine's log levels per subsystem (`log-level-core`, …): accepted, folded into one level for now. */
export const SUBSYSTEM_LOG_LEVELS = [
  'core', 'spandsp', 'ffmpeg', 'transcoding', 'codec', 'rtcp', 'ice', 'crypto', 'srtp', 'internals',
  'http', 'control', 'dtx',
] as const;
