/** The state one inference request carries through the gateway pipeline. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.ts';
import type { Upstream } from '../upstreams/upstream.ts';

export interface InferenceRoute {
  protocol: 'v2' | 'tf';
  model: string;
  version: string | undefined;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  route: InferenceRoute;
  requestId: string;
  /** `now()` when the request arrived. */
  startedAt: number;
  /** Absolute `now()` by which the client must have an answer. */
  deadline: number;
  /** The client lowered the deadline (X-Infergate-Timeout-Ms): its expiry is no fault of the worker. */
  deadlineFromClient: boolean;
  /** Aborted when the client goes away before its response is complete. */
  clientGone: AbortSignal;
  body: Buffer;
  /** Set by the authenticate stage. */
  principal: Principal | undefined;
  /** Workers already tried for this request: a retry goes elsewhere. */
  tried: Set<string>;
  upstream: Upstream | undefined;
  retries: number;
}
