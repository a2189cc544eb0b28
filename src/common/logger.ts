import type { ILogger } from './types.ts';

/** Console logger that prefixes every line with the owner's identifier. */
export function createConsoleLogger(scope: string): ILogger {
  const prefix = `[${scope}]`;
  return {
    debug: (message, ...args) => {
      if (process.env.ROOMCAST_DEBUG) console.debug(prefix, message, ...args);
    },
    info: (message, ...args) => console.info(prefix, message, ...args),
    warn: (message, ...args) => console.warn(prefix, message, ...args),
    error: (message, ...args) => console.error(prefix, message, ...args),
    isLevelEnabled: (level) => level !== 'debug' || Boolean(process.env.ROOMCAST_DEBUG),
  };
}

/** A logger that drops everything; handy in tests and benchmarks. */
export const silentLogger: ILogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  isLevelEnabled: () => false,
};
