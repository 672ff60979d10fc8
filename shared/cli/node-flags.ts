/**
 * Node flags every long-running infergate process (gateway, worker) is started with: by `npm start`
 * (package.json), by `infergate up` for the workers it spawns, by the container's ENTRYPOINT
 * (deploy/Dockerfile), and by the benchmarks, which measure what is deployed.
 *
 * `--max-semi-space-size=64` (MiB; Node 20's default is 16): V8's young generation, where every
 * per-request object is born. A proxy allocates a few KiB per request, so at thousands of requests
 * a second a 16 MiB semi-space is scavenged several times a second, and whatever is in flight at
 * that moment (sockets' buffers, the request contexts, log lines) is copied, and after a second
 * scavenge promoted to the old generation, whose collections are the expensive ones. A larger
 * semi-space lets almost all of it die young. Measured on the gateway (interleaved, 3 rounds, busy
 * 2-core machine): CPU per request at c=1 / 16 / 64 456 → 310, 269 → 218, 238 → 216 µs (medians); peak
 * RSS under load +20–25 MiB. V8 reads the flag only at startup (`v8.setFlagsFromString` later has no
 * effect on the heap's size), hence a flag and not code.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
