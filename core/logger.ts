import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Human-readable lines instead of JSON (the CLI turns this on when stderr is a terminal). */
  pretty?: boolean;
}

/** The root logger; components take `logger.child({ component })`. Logs go to stderr so stdout stays for data. */
export function createLogger(options: LoggerOptions): Logger {
  const redact = {
    paths: ['token', '*.token', 'password', '*.password', 'headers.authorization'],
    censor: '[redacted]',
  };
  if (options.pretty) {
    return pino({
      level: options.level,
      redact,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level: options.level, redact }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
