// undici parses HTTP/1.1 with llhttp compiled to WebAssembly. V8 compiles it in two tiers: a
// quick baseline on the first connection, then, once the parser has run, an optimised tier on a
// background thread. Node waits for background compile tasks before a process exits, so in a
// short-lived CI process, whose only request goes out at shutdown, that optimising compile
// (≈200–300 ms on a loaded 2-core machine) came after the last span and delayed the exit.
// One tiny request at construction, to a loopback server of our own, runs the parser early:
// the compile then overlaps the build instead of following it. The native module is shared by
// every undici client in the process, so the exporter's real requests use the compiled code.
// Once per process; every handle is unref'd or closed, nothing here can fail the host, and
// nothing leaves 127.0.0.1.
import { createServer, type Socket } from 'node:net';
import { context } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { suppressTracing } from '../otel-types.js';
import { loadUndici } from './undici.js';

let warmUp: Promise<void> | undefined;

/** The answer the intake gives, in shape: status line, a few headers, a small JSON body. */
const RESPONSE =
  'HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ndate: Wed, 02 Dec 2026 00:00:00 GMT\r\n' +
  'x-content-type-options: nosniff\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}';

/**
 * For a process that knows it sends its first request at once and then exits (the `run`
 * command, which also tells V8 to keep the baseline WebAssembly code): no warm-up there, the
 * loopback server and request would only cost it start-up time. Call before any exporter is built.
 */
export function skipHttpParserWarmUp(): void {
  warmUp ??= Promise.resolve();
}

/**
 * Starts the warm-up once per process and returns at once; the promise (the same one on every
 * call) settles when it is over, and never rejects. Never throws, never keeps the process alive.
 */
export function warmUpHttpParser(): Promise<void> {
  warmUp ??= new Promise<void>((resolve) => start(resolve));
  return warmUp;
}

function start(finished: () => void): void {
  try {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.unref();
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(RESPONSE));
      socket.once('close', () => sockets.delete(socket));
    });
    server.unref();
    server.on('error', () => finished());
    const done = (): void => {
      for (const s of sockets) s.destroy();
      server.close(() => finished());
    };
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return done();
      // The exporter's own requests never become spans, this one neither.
      void context.with(suppressTracing(context.active()), async () => {
        let client: Dispatcher | undefined;
        try {
          const u = await loadUndici();
          client = new u.Client(`http://127.0.0.1:${address.port}`, { connectTimeout: 2_000, headersTimeout: 2_000, bodyTimeout: 2_000 });
          const res = await u.request.call(client, { path: '/warm-up', method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
          await res.body.text();
        } catch {
          // Only a missed optimisation: the exporter's requests work the same without it.
        } finally {
          await client?.destroy().catch(() => undefined);
          done();
        }
      });
    });
  } catch {
    // As above: a host that forbids listening on loopback only loses the head start.
    finished();
  }
}
