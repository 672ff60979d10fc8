// Session-thread stand-in for session-ring.test.ts: answers each request with its own tensors, after
// `extra[1]` ms; `extra[0]` 1 makes the run throw.
import { parentPort, workerData } from 'node:worker_threads';
import { serveRing, type RingEnd } from '../../../worker/repository/session-ring.ts';

void serveRing(
  workerData.ring as RingEnd,
  async (request) => {
    const [fail = 0, delayMs = 0] = request.extra;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (fail === 1) throw new Error(`run refused: first value ${String(request.tensors[0]?.data[0])}`);
    return request.tensors;
  },
  () => parentPort!.postMessage('answers'),
);
