/**
 * Server-sent events read with fetch() and a ReadableStream, because EventSource cannot send an
 * Authorization header (and the admin token must not go in the URL). Parses the text/event-stream
 * format of the HTML standard (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * `event:`, `data:` (several lines joined by "\n"), `retry:`, comments, blank line = dispatch.
 * Reconnects with a growing delay after a network failure or a 5xx; stops on 401/403 (a wrong
 * token does not get better by retrying).
 *
 * @example
 *   const stream = openEventStream('/admin/pool/stream', {
 *     token, onEvent: (name, data) => name === 'pool' && render(JSON.parse(data)),
 *     onState: (state, detail) => showConnection(state, detail),
 *   });
 *   stream.close();
 */
import { ApiError } from './api.js';

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 15_000;

export function openEventStream(path, { token, onEvent, onState = () => {} }) {
  const controller = new AbortController();
  let retryMs = MIN_RETRY_MS;
  let closed = false;

  const connect = async () => {
    onState('connecting');
    try {
      const response = await fetch(path, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!response.ok) throw await errorOf(response);
      onState('open');
      retryMs = MIN_RETRY_MS;
      await readEvents(response.body, (event) => {
        if (event.retry !== undefined) retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, event.retry));
        if (event.data !== undefined) onEvent(event.name, event.data);
      });
      if (!closed) onState('reconnecting', 'the server ended the stream');
    } catch (err) {
      if (closed) return;
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        onState('unauthorized', err);
        return;
      }
      onState('reconnecting', err);
    }
    if (closed) return;
    setTimeout(() => void connect(), retryMs);
    retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
  };
  void connect();

  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

async function errorOf(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return new ApiError(response.status, body?.code ?? '', body?.error ?? response.statusText, body?.request_id ?? '');
}

/** Reads a text/event-stream body, calling `dispatch({ name, data, retry })` per event. */
async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = '';
  let data = [];
  let retry;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
      if (line === '') {
        if (data.length > 0 || retry !== undefined) dispatch({ name: name || 'message', data: data.length > 0 ? data.join('\n') : undefined, retry });
        name = '';
        data = [];
        retry = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') name = text;
      else if (field === 'data') data.push(text);
      else if (field === 'retry' && /^\d+$/.test(text)) retry = Number(text);
    }
  }
}
