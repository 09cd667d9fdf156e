import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.js';
import { OPTIONS } from '../options/table.js';

/** An answer to a bad request: its status and a one-line message, sent as {"error": message}. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface Listening {
  /** http://HOST:PORT/ as a browser opens it. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** The address a server listens on when not told (the loopback: nothing outside this machine reaches it). */
export const DEFAULT_HOST = OPTIONS.host.commands.serve.default;
/** serve's port when not told. */
export const DEFAULT_SERVE_PORT = Number(OPTIONS.port.commands.serve.default);

/** Checks --port (0: any free port) and --host before anything else is done. */
export function checkAddress(port: unknown, host: unknown, portFlag = '--port'): void {
  if (!Number.isSafeInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    throw new UserError(`${portFlag} ${String(port)}: must be an integer from 0 to 65535 (0: any free port)`);
  }
  if (typeof host !== 'string' || host === '')
    throw new UserError(`--host ${String(host)}: must be a host name or address`);
}

/**
 * Starts an HTTP server on host:port. A port in use or refused, or a host that is not this machine's, is
 * a one-line UserError naming the flag. A handler's HttpError becomes its status and {"error"}; any other
 * error a 500 with its message, and the server goes on.
 */
export async function listen(handler: Handler, port: number, host: string, portFlag = '--port'): Promise<Listening> {
  checkAddress(port, host, portFlag);
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (!res.headersSent) sendJson(res, status, { error: (err as Error).message ?? String(err) });
        else res.destroy();
      });
  });
  // A slow or stalled client may not hold a request open for long (Node checks these every
  // connectionsCheckingInterval, 30 s unless given: a 10 s limit could then take 40).
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'in use'
          : err.code === 'EACCES'
            ? 'not allowed (EACCES)'
            : err.code === 'EADDRNOTAVAIL'
              ? `${host} is not an address of this machine`
              : (err.code ?? err.message);
      // A host that does not resolve is the host's fault, not the port's.
      reject(
        new UserError(
          err.code === 'ENOTFOUND' || err.code === 'EADDRNOTAVAIL'
            ? `--host ${host}: cannot listen there (${why})`
            : `${portFlag} ${port}: cannot listen on ${host} (${why})`,
        ),
      );
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** A page of lockstep's: the frame both pages share, around their own head elements, style and body. */
export function htmlPage(title: string, head: string, style: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>${head}
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .4em; }
${style}</style>
</head>
<body>
<h1>${title}</h1>
${body}</body>
</html>
`;
}

export function sendPage(res: ServerResponse, html: string): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    // The page runs only its own inline script and the scripts this server sends.
    'content-security-policy':
      "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  });
  res.end(html);
}

/** A request's body parsed as JSON: 413 past `limit` bytes (the rest is not read), 400 when it is not JSON. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw new HttpError(413, `request body of ${declared} bytes; the limit is ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body over the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not JSON (${(err as Error).message})`);
  }
}

/** Refuses a method the route does not take, with the one it does. */
export function allow(req: IncomingMessage, res: ServerResponse, method: string): boolean {
  if (req.method === method || (method === 'GET' && req.method === 'HEAD')) return true;
  res.setHeader('allow', method);
  sendJson(res, 405, { error: `${req.method} ${req.url}: use ${method}` });
  return false;
}
