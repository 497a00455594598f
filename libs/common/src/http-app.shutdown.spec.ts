import type { INestApplication } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { installGracefulShutdown } from './http-app.setup';

describe('installGracefulShutdown', () => {
  let handlers: Record<string, (() => void)[]>;
  let exit: jest.SpyInstance;
  let clock: number;

  beforeEach(() => {
    handlers = {};
    clock = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => clock);
    jest.spyOn(process, 'on').mockImplementation(((sig: string, h: () => void) => {
      (handlers[sig] ??= []).push(h);
      return process;
    }) as any);
    exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as any);
    for (const level of ['log', 'warn', 'error'] as const) jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  const signal = (sig: 'SIGINT' | 'SIGTERM') => handlers[sig].forEach((h) => h());
  const settle = () => new Promise((r) => setImmediate(r));

  function hangingApp() {
    let finish!: () => void;
    const close = jest.fn(() => new Promise<void>((r) => (finish = r)));
    return { app: { close } as unknown as INestApplication, close, finish: () => finish() };
  }

  it('drains once; repeated signals during the drain are ignored; exits 0 when done', async () => {
    const a = hangingApp();
    installGracefulShutdown([a.app], undefined, { graceMs: 30_000 });
    signal('SIGINT');
    signal('SIGINT'); // the same Ctrl-C by another path (terminal group + forwarded)
    signal('SIGTERM');
    clock += 5_000;
    signal('SIGINT'); // an impatient second press: ignored, the drain goes on
    await settle();
    expect(a.close).toHaveBeenCalledTimes(1);
    expect(exit).not.toHaveBeenCalled();
    a.finish();
    await settle();
    expect(exit).toHaveBeenCalledWith(0);
  });

  it('a third distinct signal forces the exit', async () => {
    const a = hangingApp();
    installGracefulShutdown([a.app]);
    signal('SIGTERM');
    clock += 2_000;
    signal('SIGTERM');
    expect(exit).not.toHaveBeenCalled();
    clock += 2_000;
    signal('SIGTERM');
    expect(exit).toHaveBeenCalledWith(1);
  });

  it('any signal after the grace period (plus settle time) forces the exit', async () => {
    const a = hangingApp();
    installGracefulShutdown([a.app], undefined, { graceMs: 1_000, settleMs: 1_000 });
    signal('SIGTERM');
    clock += 2_001;
    signal('SIGTERM');
    expect(exit).toHaveBeenCalledWith(1);
  });
});
