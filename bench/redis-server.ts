/**
 * A throwaway redis-server (Debian's) for the queue's tests and benchmark: a free 127.0.0.1 port, no
 * persistence, its own directory; stop() kills it and removes the directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalRedis {
  port: number;
  /** redis://[:PASSWORD@]127.0.0.1:PORT */
  url: string;
  stop(): Promise<void>;
}

/** A port nothing listens on now (the kernel's pick), for a server or for an "unreachable" URL. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis(options: { password?: string; port?: number } = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', (err) => reject(new Error(`redis-server: ${err.message} (apt-get install redis-server)`)));
      void exited.then(() => reject(new Error(`redis-server exited before it was ready: ${output.trim()}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return { port, url: `redis://${auth}127.0.0.1:${port}`, stop };
}
