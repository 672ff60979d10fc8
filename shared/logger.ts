import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line (credentials of any kind). */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.token',
  '*.secret',
  '*.password',
  '*.adminToken',
];

/**
 * One pino logger per process; request handlers take `logger.child({ request_id })`.
 * Level comes from the caller (main.ts reads LOG_LEVEL), never from the environment here.
 * Its sibling for access lines is `accessLoggerOf(logger)`.
 */
export function createLogger(options: { level?: string; name: string; destination?: NodeJS.WritableStream }): Logger {
  const pinoOptions: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: isoTime,
  };
  const destination = options.destination === undefined ? stdoutDestination() : options.destination as pino.DestinationStream;
  const logger = pino(pinoOptions, destination);
  accessLoggers.set(logger, pino({ ...pinoOptions, redact: undefined }, destination));
  return logger;
}

/**
 * Asynchronous, batched stdout: lines collect until 4 KiB are waiting (about 20 access lines) or
 * 100 ms have passed, then go out in one write, instead of a write call per line (the gateway logs
 * one access line per request). Flushed synchronously when the process exits, normally or on an
 * uncaught exception; only a SIGKILL can lose the last 100 ms of lines.
 */
function stdoutDestination(): pino.DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 });
  process.once('exit', () => {
    try {
      stream.flushSync();
    } catch {
      // nothing more can be done at exit
    }
  });
  return stream;
}

const accessLoggers = new WeakMap<Logger, Logger>();

/**
 * The logger for access lines (one per request): the same destination, name, pid, level and line
 * format as `logger`, without redaction. Access lines are built from fixed fields (request id,
 * method, path, model, status, worker, timing), never from headers or bodies, and checking the
 * redaction paths (`*.token`, …) on every line was a third of what a line cost. A logger that
 * createLogger did not make is its own access logger.
 *
 * @example
 *   const access = accessLoggerOf(logger);
 *   access.info({ request_id, method, path, status, ms }, 'request');
 */
export function accessLoggerOf(logger: Logger): Logger {
  return accessLoggers.get(logger) ?? logger;
}

/** pino's isoTime, formatted once per millisecond rather than once per line. */
let isoTimeMs = Number.NaN;
let isoTimeField = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== isoTimeMs) {
    isoTimeMs = now;
    isoTimeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoTimeField;
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
