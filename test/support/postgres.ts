// A private PostgreSQL server for tests: initdb in a temporary directory, on a loopback port,
// stopped (by its own pg_ctl) when the test ends. Debian's `postgresql` package provides it;
// without it, callers skip.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freeTcpPort as freePort } from './net.js';

function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const v = readdirSync(root).sort().pop();
  return v && existsSync(path.join(root, v, 'bin/initdb')) ? path.join(root, v, 'bin') : null;
}


/** Starts PostgreSQL and returns its URL, or null (with the reason) when it cannot run here. */
export async function startPostgres(t: TestContext): Promise<{ url: string } | { skip: string }> {
  const bin = pgBin();
  if (!bin) return { skip: 'PostgreSQL server binaries are not installed (.ci/run installs Debian\'s postgresql)' };
  let uid: number, gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  } catch {
    return { skip: 'no postgres system user' };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-pg-'));
  chownSync(dir, uid, gid);
  const port = await freePort();
  const asPg = (cmd: string): void => {
    // initdb refuses to run as root: run as the postgres user (su exists on every Debian).
    execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', cmd], { stdio: 'pipe', timeout: 60_000 });
  };
  const data = path.join(dir, 'data');
  asPg(`${bin}/initdb -D ${data} -A trust -U postgres >${dir}/initdb.log 2>&1`);
  asPg(`${bin}/pg_ctl -D ${data} -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1" -l ${dir}/server.log -w -t 30 start >/dev/null`);
  t.after(() => {
    try { asPg(`${bin}/pg_ctl -D ${data} -m immediate -w stop >/dev/null`); } catch { /* already down */ }
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres` };
}
