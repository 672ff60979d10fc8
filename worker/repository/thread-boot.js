// Worker-thread entry: threads do not inherit the main thread's tsx loader, so this plain-JS file
// registers it and then imports the TypeScript entry named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
