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
 */
export function createLogger(options: { level?: string; name: string; destination?: NodeJS.WritableStream }): Logger {
  const pinoOptions: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination !== undefined) return pino(pinoOptions, options.destination as pino.DestinationStream);
  // Asynchronous stdout: under load, lines written while a write is under way are coalesced into
  // the next one instead of costing a syscall each (the gateway logs one access line per request).
  // Idle, a line still goes out at once. Flushed synchronously when the process exits normally.
  const stream = pino.destination({ dest: 1, sync: false });
  process.once('exit', () => {
    try {
      stream.flushSync();
    } catch {
      // nothing more can be done at exit
    }
  });
  return pino(pinoOptions, stream);
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
