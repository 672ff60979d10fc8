/**
 * The hand-off between the worker's main thread and one session thread, in shared memory: a ring of
 * RING_SLOTS request and response slots (each a SharedArrayBuffer holding one tensor frame, see
 * tensor-frame.ts) and four counters. A run costs a memcpy each way and, only when the other side
 * sleeps, one wake-up: no structured clone, no MessageEvent, no per-run allocation of message
 * objects. Measured against postMessage per run it saves ≈ 15 µs of CPU per inference on this
 * machine (docs/performance-worker.md).
 *
 * Protocol (all counters are int32 and wrap; slot = counter & (RING_SLOTS - 1)):
 * - main writes request n into slot n, then publishes SUBMITTED = n + 1; it wakes the thread
 *   (Atomics.notify) only when SLEEPING says the thread waits. It never has more than RING_SLOTS
 *   runs unanswered, so a slot is free again once its response has been read.
 * - the thread runs requests strictly in order, writes the response into the same slot, publishes
 *   COMPLETED = n + 1 and rings the doorbell (a message to the main thread) unless one is already
 *   pending (DOORBELL), so a busy main thread collects many results per message.
 * - a slot too small for a frame is replaced by a larger buffer, handed over once through a side
 *   MessagePort read synchronously (receiveMessageOnPort) and announced by a per-slot generation
 *   counter, so steady state sends no messages at all.
 */
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { frameBytes, readFrame, writeFrame, type Frame, type FrameTensor } from './tensor-frame.ts';

/** Runs handed to one session thread at once, at most; a power of two. */
export const RING_SLOTS = 4;
const SUBMITTED = 0;
const COMPLETED = 1;
const SLEEPING = 2;
const DOORBELL = 3;
/** Then one request and one response generation per slot. */
const GENERATIONS = 4;
const INITIAL_SLOT_BYTES = 64 * 1024;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** What a session thread receives (in workerData) to serve its end of the ring. */
export interface RingEnd {
  control: SharedArrayBuffer;
  requests: SharedArrayBuffer[];
  responses: SharedArrayBuffer[];
  port: MessagePort;
}

interface SlotGrowth {
  kind: 'request' | 'response';
  slot: number;
  generation: number;
  buffer: SharedArrayBuffer;
}

interface Pending {
  tensors: FrameTensor[];
  extra: number[];
  resolve(frame: Frame): void;
  reject(err: Error): void;
}

const slotOf = (n: number): number => n & (RING_SLOTS - 1);
const requestGeneration = (slot: number): number => GENERATIONS + slot;
const responseGeneration = (slot: number): number => GENERATIONS + RING_SLOTS + slot;

/** A buffer of at least `bytes`, a power of two so Float64 views always fit. */
function slotBuffer(bytes: number): SharedArrayBuffer {
  let size = INITIAL_SLOT_BYTES;
  while (size < bytes) size *= 2;
  return new SharedArrayBuffer(size);
}

/** Applies slot replacements from the side port until `slot` has the generation the counters announce. */
function catchUp(port: MessagePort, buffers: SharedArrayBuffer[], generations: number[], kind: SlotGrowth['kind'], slot: number, announced: number): void {
  while (generations[slot] !== announced) {
    const message = receiveMessageOnPort(port)?.message as SlotGrowth | undefined;
    if (message === undefined) throw new Error(`session ring: ${kind} slot ${slot} generation ${announced} was announced but never sent`);
    if (message.kind !== kind) throw new Error(`session ring: got a ${message.kind} slot while expecting a ${kind} slot`);
    buffers[message.slot] = message.buffer;
    generations[message.slot] = message.generation;
  }
}

/** The main thread's end: submit frames, collect responses when the doorbell rings. */
export class RingClient {
  readonly #control: Int32Array;
  readonly #requests: SharedArrayBuffer[];
  readonly #responses: SharedArrayBuffer[];
  readonly #requestGenerations = new Array<number>(RING_SLOTS).fill(0);
  readonly #responseGenerations = new Array<number>(RING_SLOTS).fill(0);
  readonly #port: MessagePort;
  /** The thread's end, to pass to it once (workerData + transferList). */
  readonly threadEnd: RingEnd;
  #submitted = 0;
  #consumed = 0;
  #failed: Error | undefined;
  /** Submitted and unanswered, in submission order (= answer order). */
  #inflight: Pending[] = [];
  /** Waiting for a free slot. */
  #waiting: Pending[] = [];

  constructor() {
    const control = new SharedArrayBuffer(4 * (GENERATIONS + 2 * RING_SLOTS));
    this.#control = new Int32Array(control);
    this.#requests = Array.from({ length: RING_SLOTS }, () => slotBuffer(0));
    this.#responses = Array.from({ length: RING_SLOTS }, () => slotBuffer(0));
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.threadEnd = { control, requests: [...this.#requests], responses: [...this.#responses], port: port2 };
  }

  /** Hands a frame to the thread; resolves with the response frame, rejects with the thread's error. */
  submit(tensors: FrameTensor[], extra: number[]): Promise<Frame> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise<Frame>((resolve, reject) => {
      this.#waiting.push({ tensors, extra, resolve, reject });
      this.#submitWaiting();
    });
  }

  /** Reads every answered run; call when the thread's doorbell message arrives. */
  collect(): void {
    if (this.#failed !== undefined) return; // a doorbell that arrived after the thread died
    Atomics.store(this.#control, DOORBELL, 0); // before reading COMPLETED: a later answer rings again
    const completed = Atomics.load(this.#control, COMPLETED);
    while (this.#consumed !== completed) {
      const slot = slotOf(this.#consumed);
      const pending = this.#inflight.shift()!;
      this.#consumed = (this.#consumed + 1) | 0;
      let frame: Frame;
      try {
        catchUp(this.#port, this.#responses, this.#responseGenerations, 'response', slot, Atomics.load(this.#control, responseGeneration(slot)));
        frame = readFrame(this.#responses[slot]!);
      } catch (err) {
        pending.reject(err as Error);
        continue;
      }
      const failure = failureOf(frame);
      if (failure === undefined) pending.resolve(frame);
      else pending.reject(new Error(failure));
    }
    this.#submitWaiting();
  }

  /** The thread is gone: everything submitted or waiting fails with `err`. */
  failAll(err: Error): void {
    this.#failed ??= err;
    const all = [...this.#inflight, ...this.#waiting];
    this.#inflight = [];
    this.#waiting = [];
    for (const pending of all) pending.reject(err);
    this.#port.close();
  }

  #submitWaiting(): void {
    let submitted = false;
    while (this.#waiting.length > 0 && ((this.#submitted - this.#consumed) | 0) < RING_SLOTS) {
      const pending = this.#waiting.shift()!;
      const slot = slotOf(this.#submitted);
      try {
        const bytes = frameBytes(pending.tensors, pending.extra);
        if (bytes > this.#requests[slot]!.byteLength) this.#grow(slot, bytes);
        writeFrame(this.#requests[slot]!, pending.tensors, pending.extra);
      } catch (err) {
        pending.reject(err as Error);
        continue;
      }
      this.#inflight.push(pending);
      this.#submitted = (this.#submitted + 1) | 0;
      submitted = true;
    }
    if (!submitted) return;
    Atomics.store(this.#control, SUBMITTED, this.#submitted);
    if (Atomics.load(this.#control, SLEEPING) !== 0) Atomics.notify(this.#control, SUBMITTED, 1);
  }

  #grow(slot: number, bytes: number): void {
    const buffer = slotBuffer(bytes);
    const generation = this.#requestGenerations[slot]! + 1;
    this.#port.postMessage({ kind: 'request', slot, generation, buffer } satisfies SlotGrowth);
    this.#requests[slot] = buffer;
    this.#requestGenerations[slot] = generation;
    Atomics.store(this.#control, requestGeneration(slot), generation);
  }
}

/**
 * The session thread's end: runs every request in order, forever. `run` answers a request frame
 * with a response frame (or throws: the message goes back as the run's error); `ring` tells the
 * main thread that answers are waiting. The request's numeric tensors view the slot itself (no
 * copy): valid until `run` settles, after which the main thread may reuse the slot. Blocks the thread in Atomics.wait while there is no work,
 * which Worker.terminate() interrupts.
 */
export async function serveRing(end: RingEnd, run: (request: Frame) => Promise<FrameTensor[]>, ring: () => void): Promise<never> {
  const control = new Int32Array(end.control);
  const requests = [...end.requests];
  const responses = [...end.responses];
  const requestGenerations = new Array<number>(RING_SLOTS).fill(0);
  let next = 0;
  for (;;) {
    if (Atomics.load(control, SUBMITTED) === next) {
      Atomics.store(control, SLEEPING, 1);
      Atomics.wait(control, SUBMITTED, next); // returns at once if a request arrived meanwhile
      Atomics.store(control, SLEEPING, 0);
      continue;
    }
    const slot = slotOf(next);
    let answer: FrameTensor[];
    try {
      catchUp(end.port, requests, requestGenerations, 'request', slot, Atomics.load(control, requestGeneration(slot)));
      answer = await run(readFrame(requests[slot]!, false));
    } catch (err) {
      answer = [failureTensor((err as Error).message)];
    }
    const bytes = frameBytes(answer);
    if (bytes > responses[slot]!.byteLength) {
      const buffer = slotBuffer(bytes);
      const generation = Atomics.load(control, responseGeneration(slot)) + 1;
      end.port.postMessage({ kind: 'response', slot, generation, buffer } satisfies SlotGrowth);
      responses[slot] = buffer;
      Atomics.store(control, responseGeneration(slot), generation);
    }
    writeFrame(responses[slot]!, answer);
    next = (next + 1) | 0;
    Atomics.store(control, COMPLETED, next);
    if (Atomics.compareExchange(control, DOORBELL, 0, 1) === 0) ring();
  }
}

/** A run's error travels as a response frame holding one BYTES tensor with index -1. */
function failureTensor(message: string): FrameTensor {
  return { index: -1, datatype: 'BYTES', shape: [1], data: [utf8.encode(message)] };
}

function failureOf(frame: Frame): string | undefined {
  const first = frame.tensors[0];
  if (first === undefined || first.index !== -1) return undefined;
  return utf8Decoder.decode((first.data as Uint8Array[])[0]);
}
