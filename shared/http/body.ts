/**
 * Reads a request body with the limit enforced while reading (413 before buffering it all), and the
 * Content-Type and Content-Encoding checked first (415). gzip and deflate bodies are inflated with
 * the same limit applied to the inflated size, so a compression bomb costs at most `limitBytes`.
 */
import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import { InfergateError } from '../errors.ts';

export interface BodyOptions {
  limitBytes: number;
  /** Media types accepted (lower case, no parameters). */
  accept: readonly string[];
  /** Inflate gzip/deflate bodies (default). A proxy passes them on as they came instead. */
  inflate?: boolean;
}

export async function readBody(req: IncomingMessage, options: BodyOptions): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== '' && !options.accept.includes(type)) {
    throw new InfergateError('ERR_UNSUPPORTED_MEDIA_TYPE', `Content-Type '${type}' is not supported here; use ${options.accept.join(' or ')}`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let decoder: Gunzip | Inflate | undefined;
  const inflate = options.inflate ?? true;
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = inflate ? createGunzip() : undefined;
  else if (encoding === 'deflate') decoder = inflate ? createInflate() : undefined;
  else if (encoding !== 'identity') throw new InfergateError('ERR_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding '${encoding}' is not supported; use gzip, deflate or identity`);

  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > options.limitBytes) throw tooLarge(options.limitBytes);

  const source: NodeJS.ReadableStream = decoder === undefined ? req : req.pipe(decoder);
  // Plain listeners rather than `for await`: this runs for every request, and the async iterator
  // costs a promise per chunk.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('error', onError);
      req.removeListener('close', onClose);
      if (decoder !== undefined) req.removeListener('error', onError);
    };
    const fail = (err: Error): void => {
      cleanup();
      decoder?.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > options.limitBytes) fail(tooLarge(options.limitBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (): void => {
      fail(decoder !== undefined && req.complete
        ? new InfergateError('ERR_BAD_REQUEST', `the ${encoding} body could not be decoded`)
        : new InfergateError('ERR_BAD_REQUEST', 'the request body ended early'));
    };
    const onClose = (): void => {
      if (!req.complete) onError();
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    req.once('close', onClose);
    if (decoder !== undefined) req.once('error', onError);
  });
}

function tooLarge(limit: number): InfergateError {
  return new InfergateError('ERR_BODY_TOO_LARGE', `the body is over the limit of ${limit} bytes`);
}
