import type { RedisOptions } from 'ioredis';
import { requirePackage } from '../packages.js';
import { UserError } from '../errors.js';

/** Where a queue lives: ioredis' options, and the URL as it may be printed (no password, ever). */
export interface QueueAddress {
  connection: RedisOptions;
  /** `redis://[USER@]HOST:PORT/DB`: the URL without its password, for every message. */
  shown: string;
}

/** How long a first connection may take before the URL is reported unreachable. */
const CONNECT_TIMEOUT_MS = 5000;

/** Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (or `redis://PASSWORD@HOST`, as redis-cli); a malformed URL is a UserError naming it (without its password). */
export function parseQueueUrl(url: string): QueueAddress {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    // Shown below without anything between "//" and "@".
  }
  // Unparsed, everything from "//" to the last "@" may be a password (one with a "/" in it, say): none of it is shown.
  const bad = (why: string) =>
    new UserError(
      `--queue ${u ? showUrl(u) : url.replace(/\/\/.*@/s, '//')}: ${why}; give redis://[:PASSWORD@]HOST:PORT[/DB]`,
    );
  if (u === null) throw bad('not a URL');
  // A second "@" (an unencoded one in the password) ends the user part early: what follows it may be the password.
  if ((u.host + u.pathname + u.search + u.hash).includes('@')) {
    u = null;
    throw bad('an @ in the password must be written %40 (a / as %2F, a # as %23)');
  }
  if (u.protocol !== 'redis:') throw bad(`${u.protocol.slice(0, -1)}: is not redis:`);
  if (u.hostname === '') throw bad('no host');
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  if (!/^\d*$/.test(dbText)) throw bad(`database ${dbText} is not a number`);
  if (u.search !== '' || u.hash !== '') throw bad('takes no ?query or #fragment');
  const decoded = (part: string) => {
    try {
      return part === '' ? undefined : decodeURIComponent(part);
    } catch {
      throw bad('a % in the user or password that is not %XX (write a % as %25, a / as %2F, a # as %23, an @ as %40)');
    }
  };
  // One part before the "@" is the password, as redis-cli reads it (AUTH needs one; a user alone means nothing).
  const [username, password] = u.password === '' ? ['', u.username] : [u.username, u.password];
  const connection: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db: dbText === '' ? 0 : Number(dbText),
    username: decoded(username),
    password: decoded(password),
  };
  return { connection, shown: showUrl(u, connection.db) };
}

/** The URL without its password: the user only where a password follows it (`redis://USER:PASSWORD@`). */
function showUrl(u: URL, db?: number): string {
  const user = u.username && u.password ? `${u.username}@` : '';
  return `${u.protocol}//${user}${u.host}${db === undefined ? u.pathname : `/${db}`}`;
}

/**
 * Checks that the queue answers, once, before anything is enqueued or taken: an unreachable host, a wrong
 * password or a database out of range is a UserError naming the URL. Later losses are BullMQ's to wait out.
 */
export async function checkQueueReachable(address: QueueAddress): Promise<void> {
  const { username, password, db, ...where } = address.connection;
  // AUTH and SELECT sent here rather than by ioredis on connecting, which only logs their errors.
  const client = new (requirePackage<typeof import('ioredis')>('ioredis').Redis)({
    ...where,
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // A port that takes the connection and never answers (not Redis, or a stopped one) is unreachable too.
    commandTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  // The socket's own error (ECONNREFUSED, ENOTFOUND) says more than connect()'s "Connection is closed".
  let socketError: Error | undefined;
  client.on('error', (err: Error) => (socketError ??= err));
  try {
    await client.connect();
    if (password !== undefined)
      await (username === undefined ? client.auth(password) : client.auth(username, password));
    await client.select(db ?? 0);
    await client.ping();
  } catch (err) {
    throw new UserError(`--queue ${address.shown}: ${connectionProblem(socketError ?? (err as Error))}`);
  } finally {
    client.disconnect();
  }
}

/** A connection error in a user's words. */
export function connectionProblem(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const message = err.message ?? String(err);
  if (/WRONGPASS|invalid username-password/i.test(message)) return 'wrong password (or user)';
  if (/without any password configured/i.test(message))
    return 'a password was given, but the server has none (set requirepass there, or drop the password)';
  if (/NOAUTH/i.test(message)) return 'the server needs a password: give redis://:PASSWORD@HOST:PORT';
  if (/DB index is out of range/i.test(message)) return 'no such database on the server';
  if (/Protocol error/i.test(message)) return 'not a Redis server (it answered in another protocol)';
  if (code === 'ECONNREFUSED') return 'connection refused (is redis-server running there, on that port?)';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was cut';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'no such host';
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message))
    return `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  if (/Connection is closed/i.test(message)) return 'the server closed the connection';
  return `cannot connect (${code ?? message.split('\n')[0]})`;
}
