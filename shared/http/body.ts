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
  return new BodyReader(req, source, decoder, options.limitBytes, encoding).promise;
}

/**
 * One read in progress. Plain listeners rather than `for await` (the async iterator costs a promise
 * per chunk), and shared ones (the reader rides on the streams), so a read allocates this object and
 * its promise, not a closure per event.
 */
class BodyReader {
  readonly promise: Promise<Buffer>;
  readonly #req: IncomingMessage;
  readonly #source: NodeJS.ReadableStream;
  readonly #decoder: Gunzip | Inflate | undefined;
  readonly #limitBytes: number;
  readonly #encoding: string;
  #resolve!: (body: Buffer) => void;
  #reject!: (err: Error) => void;
  #chunks: Buffer[] = [];
  #total = 0;

  constructor(req: IncomingMessage, source: NodeJS.ReadableStream, decoder: Gunzip | Inflate | undefined, limitBytes: number, encoding: string) {
    this.#req = req;
    this.#source = source;
    this.#decoder = decoder;
    this.#limitBytes = limitBytes;
    this.#encoding = encoding;
    this.promise = new Promise<Buffer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    (source as Tagged)[READER] = this;
    (req as Tagged)[READER] = this;
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    req.on('close', onClose);
    if (decoder !== undefined) req.on('error', onError);
  }

  data(chunk: Buffer): void {
    this.#total += chunk.length;
    if (this.#total > this.#limitBytes) this.#fail(tooLarge(this.#limitBytes));
    else this.#chunks.push(chunk);
  }

  end(): void {
    this.#cleanup();
    const chunks = this.#chunks;
    this.#resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#total));
  }

  error(): void {
    this.#fail(this.#decoder !== undefined && this.#req.complete
      ? new InfergateError('ERR_BAD_REQUEST', `the ${this.#encoding} body could not be decoded`)
      : new InfergateError('ERR_BAD_REQUEST', 'the request body ended early'));
  }

  close(): void {
    if (!this.#req.complete) this.error();
  }

  #fail(err: Error): void {
    this.#cleanup();
    const decoder = this.#decoder;
    if (decoder !== undefined) {
      // Destroying the decoder unpipes and pauses the request, and node:http never discards a body
      // that was being consumed: the rest would stay unread and the keep-alive connection would
      // hang. Let it flow into nothing instead (the caller decides whether to keep the connection).
      this.#req.unpipe(decoder);
      decoder.destroy();
      this.#req.resume();
    }
    this.#reject(err);
  }

  /**
   * Detaches the reader: its listeners stay on the request's own streams (both end with the
   * request) but do nothing any more, which costs less than removing four of them every time.
   */
  #cleanup(): void {
    (this.#source as Tagged)[READER] = undefined;
    (this.#req as Tagged)[READER] = undefined;
  }
}

const READER = Symbol('infergate.bodyReader');
type Tagged = { [READER]?: BodyReader | undefined };

function onData(this: Tagged, chunk: Buffer): void {
  this[READER]?.data(chunk);
}

function onEnd(this: Tagged): void {
  this[READER]?.end();
}

function onError(this: Tagged): void {
  this[READER]?.error();
}

function onClose(this: Tagged): void {
  this[READER]?.close();
}

function tooLarge(limit: number): InfergateError {
  return new InfergateError('ERR_BODY_TOO_LARGE', `the body is over the limit of ${limit} bytes`);
}

/**
 * Whether the unread rest of a request body can be read and thrown away after an early answer,
 * keeping the connection: its length is declared and at most `limitBytes`. node:http discards an
 * unconsumed body itself once the response is finished. Closing instead, with bytes still
 * arriving, makes the kernel reset the connection, and a client still writing its body (a gateway
 * forwarding 8 MiB) can lose the answer to that reset before it reads it.
 */
export function bodyDiscardable(req: IncomingMessage, limitBytes: number): boolean {
  const declared = req.headers['content-length'];
  return declared !== undefined && req.headers['transfer-encoding'] === undefined && Number(declared) <= limitBytes;
}
