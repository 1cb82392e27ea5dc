// Limits at the edge, applied before anything is decoded: the body's size on the wire and after
// decompression (a gzip bomb is refused once its output passes the limit, never inflated whole
// into memory), and the number of objects a body may make a decoder build.
import type { IncomingMessage } from 'node:http';
import { gunzip, inflate } from 'node:zlib';

/** The OTLP specification's recommended body limit. */
export const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024;
/**
 * Objects (messages, JSON objects and arrays) one request may decode into. A 20 MiB body of
 * empty repeated elements would otherwise make ~10 million objects (~1 GiB); real exporters send
 * a few thousand spans of ~25 objects each per request (the collector's default batch, 8192
 * spans, is ~200,000). 500,000 decode into ~70 MiB.
 */
export const DEFAULT_MAX_ELEMENTS = 500_000;
/** Nesting of messages / JSON values (AnyValue arrays and maps nest without bound otherwise). */
export const MAX_DEPTH = 64;

/** A request the receiver refuses: the HTTP status and the message of its google.rpc.Status. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const tooLarge = (what: string, limit: number): RequestError =>
  new RequestError(413, `${what} is larger than the limit of ${limit} bytes`);

export type BodyResult = { ok: true; body: Buffer } | { ok: false; error: RequestError };

/**
 * Reads a request body up to `maxBytes`. Past the limit it answers at once and keeps reading
 * (discarding) the rest, so the client can finish its upload and read the 413: a connection
 * reset mid-upload reads to the collector as a network error, which it retries.
 */
export function readBody(req: IncomingMessage, maxBytes: number, reserve: (bytes: number) => boolean): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      req.resume();
      resolve({ ok: false, error: tooLarge('the request body', maxBytes) });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (r: BodyResult): void => {
      if (done) return;
      done = true;
      resolve(r);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish({ ok: false, error: tooLarge('the request body', maxBytes) });
        return;
      }
      if (!reserve(chunk.length)) {
        chunks.length = 0;
        finish({ ok: false, error: new RequestError(503, 'the receiver holds too many request bodies at once; retry later') });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }));
    req.on('error', () => finish({ ok: false, error: new RequestError(400, 'the request body was not received whole') }));
    req.on('aborted', () => finish({ ok: false, error: new RequestError(400, 'the request body was not received whole') }));
  });
}

export type Encoding = 'identity' | 'gzip' | 'deflate';

/** The Content-Encoding header → one supported coding, or undefined (→ 415). */
export function parseContentEncoding(header: string | undefined): Encoding | undefined {
  const v = (header ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity') return 'identity';
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  return undefined;
}

/**
 * Decompresses off the main thread with zlib's output cap: the stream stops (and the output is
 * released) as soon as it passes `maxBytes`, so a bomb costs at most the limit in memory.
 */
export function decompress(body: Buffer, encoding: Encoding, maxBytes: number): Promise<Buffer> {
  if (encoding === 'identity') return Promise.resolve(body);
  const fn = encoding === 'gzip' ? gunzip : inflate;
  return new Promise((resolve, reject) => {
    fn(body, { maxOutputLength: maxBytes }, (err, out) => {
      if (!err) {
        resolve(out);
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) reject(tooLarge('the decompressed request body', maxBytes));
      else reject(new RequestError(400, `the ${encoding} body cannot be decompressed (${code ?? 'corrupt'})`));
    });
  });
}
