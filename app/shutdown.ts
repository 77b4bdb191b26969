import type { Logger } from '../core/logger.js';

/**
 * The shutdown order, written once for every role. Each piece a role starts is registered under its stage; a
 * stop closes stage by stage in this order (within a stage, the last registered first), so:
 * 1. `fleet`: simulated devices (the demo's) stop sending;
 * 2. `intake`: the broker or the external-broker sessions take no new message (devices are recorded offline);
 * 3. `drain`: messages already taken finish their appends;
 * 4. `commands`: the command side takes no new change or command (they answer 503), finishes those under way
 *    (appended and folded, so it needs the log and the read side still open), stops its expiry timers and closes its
 *    downlink; open commands stay open in the log and are armed again at the next start;
 * 5. `processors`: retention stops, the read models fold everything appended, the sinks and the runner close;
 * 6. `http`: the API stops;
 * 7. `log`: the event log flushes and closes;
 * 8. `stores`: dead letters, presence, credentials.
 * A failed startup stops what it had started the same way.
 */
export const SHUTDOWN_ORDER = [
  'fleet',
  'intake',
  'drain',
  'commands',
  'processors',
  'http',
  'log',
  'stores',
] as const;
export type ShutdownStage = (typeof SHUTDOWN_ORDER)[number];

export interface Shutdown {
  /** Registers `close` to run in `stage`. */
  add(stage: ShutdownStage, name: string, close: () => Promise<void> | void): void;
  /** Runs every registered close in order, once; a failing one is logged and the rest still run. */
  run(): Promise<void>;
}

export function createShutdown(logger: Logger): Shutdown {
  const steps: { stage: ShutdownStage; name: string; close: () => Promise<void> | void }[] = [];
  let running: Promise<void> | undefined;
  return {
    add(stage, name, close) {
      steps.push({ stage, name, close });
    },
    run() {
      running ??= (async () => {
        let first: Error | undefined;
        for (const stage of SHUTDOWN_ORDER) {
          for (const step of steps.filter((s) => s.stage === stage).reverse()) {
            try {
              await step.close();
            } catch (err) {
              logger.error({ err, stage, piece: step.name }, 'error while stopping');
              first ??=
                err instanceof Error ? err : new Error(`stopping ${step.name} failed`, { cause: err });
            }
          }
        }
        if (first) throw first;
      })();
      return running;
    },
  };
}

/** Runs `start`; if it throws, stops what was started so far, then rethrows. */
export async function startOrUnwind<T>(shutdown: Shutdown, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await shutdown.run().catch(() => undefined);
    throw err;
  }
}
