import { adaptLogger, logFields } from '../common/log.ts';
import type { ILogger } from '../common/types.ts';

export type TShutdownSignal = 'SIGINT' | 'SIGTERM';

export interface IShutdownSignalOptions {
  /** The graceful stop to run; it should bound its own duration. */
  stop: () => Promise<void>;
  logger: ILogger;
  signals?: readonly TShutdownSignal[];
  /** How to leave the process; replaced in tests. Default: `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * Runs `stop()` on SIGINT / SIGTERM, then exits: 0 after a clean stop, 1 when it
 * failed. A second signal while stopping exits at once (an impatient Ctrl-C).
 * Returns a function that removes the listeners again.
 */
export function installShutdownSignals(opts: IShutdownSignalOptions): () => void {
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const log = adaptLogger(opts.logger);

  const onSignal = (signal: TShutdownSignal): void => {
    if (stopping) {
      log.warn(`${signal} received again: exiting without waiting`, logFields({ signal }));
      exit(1);
      return;
    }
    stopping = true;
    log.info(`${signal} received: stopping`, logFields({ signal }));
    opts.stop().then(
      () => exit(0),
      (error: unknown) => {
        log.error('Graceful stop failed', logFields({ signal, error }));
        exit(1);
      },
    );
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
