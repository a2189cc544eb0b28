export interface IExecutePromiseWithLimitOptions<T> {
  /** Task factories; a task starts only when a slot in the window is free. */
  tasks: ReadonlyArray<() => Promise<T>>;
  /** Most tasks in flight at once (at least 1). */
  limit: number;
  /** Called after each task settles successfully, in completion order. */
  onTaskDone?: (opts: { index: number; result: T }) => void;
}

/**
 * Runs `tasks` with at most `limit` in flight: a sliding window, so a new task
 * starts as soon as any running one finishes (not batch by batch).
 * Resolves to the results in task order. The first rejection rejects the whole
 * call and no further task is started; tasks already running are left to finish.
 */
export function executePromiseWithLimit<T>(opts: IExecutePromiseWithLimitOptions<T>): Promise<T[]> {
  const { tasks, onTaskDone } = opts;
  const limit = Math.floor(opts.limit);
  if (!Number.isFinite(limit) || limit < 1) {
    return Promise.reject(
      new Error(`[executePromiseWithLimit] limit must be a number >= 1, got ${opts.limit}`),
    );
  }

  const results = new Array<T>(tasks.length);
  if (tasks.length === 0) return Promise.resolve(results);

  return new Promise<T[]>((resolve, reject) => {
    let next = 0;
    let settled = 0;
    let failed = false;

    const startNext = (): void => {
      if (failed || next >= tasks.length) return;
      const index = next++;
      let running: Promise<T>;
      try {
        running = Promise.resolve(tasks[index]!());
      } catch (error) {
        running = Promise.reject(error);
      }
      running.then(
        (result) => {
          if (failed) return;
          results[index] = result;
          onTaskDone?.({ index, result });
          settled++;
          if (settled === tasks.length) resolve(results);
          else startNext();
        },
        (error: unknown) => {
          if (failed) return;
          failed = true;
          reject(error);
        },
      );
    };

    const initial = Math.min(limit, tasks.length);
    for (let i = 0; i < initial; i++) startNext();
  });
}
