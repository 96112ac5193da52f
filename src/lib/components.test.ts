import { describe, expect, it } from 'vitest';
import { type Component, startComponents } from './components.js';

const recorder = () => {
  const calls: string[] = [];
  const component = (name: string, options: { failStart?: boolean; failStop?: boolean } = {}): Component => ({
    name,
    start: () => {
      calls.push(`start ${name}`);
      if (options.failStart) throw new Error(`${name} cannot start`);
    },
    stop: async () => {
      calls.push(`stop ${name}`);
      if (options.failStop) throw new Error(`${name} cannot stop`);
    },
  });
  return { calls, component };
};

describe('startComponents', () => {
  it('starts in order, stops in reverse, and stops once however often stop is called', async () => {
    const { calls, component } = recorder();
    const running = await startComponents(
      () => undefined,
      async (start) => {
        await start(component('log'));
        await start(component('store'));
        await start(component('http'));
        return 'built';
      },
    );
    expect(running.value).toBe('built');
    await Promise.all([running.stop(), running.stop()]);
    expect(calls).toEqual(['start log', 'start store', 'start http', 'stop http', 'stop store', 'stop log']);
  });

  it('stops what has started when a start fails, and rethrows the start error', async () => {
    const { calls, component } = recorder();
    await expect(
      startComponents(
        () => undefined,
        async (start) => {
          await start(component('log'));
          await start(component('store'));
          await start(component('runner', { failStart: true }));
          await start(component('never'));
        },
      ),
    ).rejects.toThrow('runner cannot start');
    expect(calls).toEqual(['start log', 'start store', 'start runner', 'stop store', 'stop log']);
  });

  it('stops what has started when building between starts fails', async () => {
    const { calls, component } = recorder();
    await expect(
      startComponents(
        () => undefined,
        async (start) => {
          await start(component('store'));
          throw new Error('keys cannot be set up');
        },
      ),
    ).rejects.toThrow('keys cannot be set up');
    expect(calls).toEqual(['start store', 'stop store']);
  });

  it('keeps stopping past a failed stop, reports it, and rejects with it', async () => {
    const { calls, component } = recorder();
    const reported: string[] = [];
    const running = await startComponents(
      (name, error) => reported.push(`${name}: ${(error as Error).message}`),
      async (start) => {
        await start(component('store'));
        await start(component('writer', { failStop: true }));
        await start(component('http'));
      },
    );
    await expect(running.stop()).rejects.toThrow('writer cannot stop');
    expect(calls.filter((c) => c.startsWith('stop'))).toEqual(['stop http', 'stop writer', 'stop store']);
    expect(reported).toEqual(['writer: writer cannot stop']);
  });

  it('refuses to start a component once stopping has begun', async () => {
    const { component } = recorder();
    let late: ((c: Component) => Promise<void>) | undefined;
    const running = await startComponents(
      () => undefined,
      async (start) => {
        late = start;
      },
    );
    await running.stop();
    await expect(late!(component('late'))).rejects.toThrow('cannot start late: stopping has begun');
  });
});
