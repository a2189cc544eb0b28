import { describe, expect, test } from 'bun:test';
import { fireAndLog, settleSoon } from '../../src/utils/safe-call.ts';
import { recordingLogger } from '../support/server.ts';

describe('settleSoon', () => {
  test('a plain return value is answered synchronously', () => {
    expect(settleSoon((n: number) => n * 2, 21)).toEqual({ ok: true, value: 42 });
  });

  test('a throw becomes an outcome, synchronously', () => {
    const error = new Error('boom');
    expect(
      settleSoon(() => {
        throw error;
      }, undefined),
    ).toEqual({ ok: false, error });
  });

  test('a promise is awaited, resolved or rejected', async () => {
    const resolved = settleSoon(async (n: number) => n + 1, 1);
    expect(resolved).toBeInstanceOf(Promise);
    expect(await resolved).toEqual({ ok: true, value: 2 });
    const error = new Error('late');
    expect(await settleSoon(() => Promise.reject(error), undefined)).toEqual({ ok: false, error });
  });

  test('any thenable counts as pending', async () => {
    // biome-ignore lint/suspicious/noThenProperty: a custom thenable is the case under test
    const thenable = { then: (resolve: (v: string) => void) => resolve('ok') } as PromiseLike<string>;
    const outcome = settleSoon(() => thenable, undefined);
    expect(outcome).toBeInstanceOf(Promise);
    expect(await outcome).toEqual({ ok: true, value: 'ok' });
  });
});

describe('fireAndLog', () => {
  test('throws and rejections are logged, never raised', async () => {
    const logger = recordingLogger();
    fireAndLog(
      logger,
      'cb',
      () => {
        throw new Error('sync');
      },
      1,
    );
    fireAndLog(logger, 'cb', () => Promise.reject(new Error('async')), 1);
    await Bun.sleep(0);
    expect(logger.lines.filter((e) => e.level === 'error').map((e) => e.message)).toEqual([
      'cb threw',
      'cb rejected',
    ]);
  });
});
