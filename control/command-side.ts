import { isOpen } from '../core/command-status.js';
import type { Logger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createCommandHandler, type CommandHandler, type CommandSideReads } from './command-handler.js';
import { createDispatcher } from './dispatcher.js';
import type { Downlink } from './downlink.js';
import { createExpiryScheduler } from './expiry-scheduler.js';

export interface CommandSide {
  handler: CommandHandler;
  downlink: Downlink;
  /** Resolves once the read models have caught up at start, every desired document is published again and every
   * open command's expiry armed. */
  ready: Promise<void>;
  /** Open commands armed for expiry. */
  armed(): number;
  close(): Promise<void>;
}

export interface CommandSideDeps {
  log: Pick<EventLog, 'append' | 'lastSeq'>;
  /** The read models it decides against (the app passes its read side). */
  reads: CommandSideReads;
  downlink: Downlink;
  knownElsewhere?: (deviceId: string) => boolean;
  logger: Logger;
  now?: () => number;
}

/** A publish that does not answer within this long is left to finish (or fail, logged) in the background. */
const PUBLISH_WAIT_MS = 2_000;

/**
 * The command side, wired: the handler (validate, record, publish), delivery to devices as they connect, and the
 * expiry scheduler, which is armed from the read model at start and from each folded CommandIssued afterwards (so
 * commands recorded by another process, or before a restart, expire too).
 */
export function startCommandSide(deps: CommandSideDeps): CommandSide {
  const { reads, downlink } = deps;
  const { commands, desired } = reads.readModels;
  const logger = deps.logger.child({ component: 'command-side' });
  const now = deps.now ?? Date.now;
  const dispatcher = createDispatcher({
    downlink,
    openFor: (deviceId) => commands.openFor(deviceId),
    logger,
    now,
  });

  const waitBriefly = (what: string, work: Promise<void>, fields: object) => {
    const logged = work.catch((err: unknown) => logger.warn({ err, ...fields }, `${what} failed`));
    return Promise.race([
      logged,
      new Promise<void>((resolve) => setTimeout(resolve, PUBLISH_WAIT_MS).unref()),
    ]);
  };

  const handler = createCommandHandler({
    log: deps.log,
    reads,
    ...(deps.knownElsewhere ? { knownElsewhere: deps.knownElsewhere } : {}),
    logger,
    now,
    onDesiredChanged: (s) =>
      waitBriefly(
        'publishing the desired document',
        downlink.publishDesired(s.deviceId, { version: s.version, state: s.state }),
        {
          deviceId: s.deviceId,
        },
      ),
    onCommandIssued: async (record) => {
      scheduler.arm(record.commandId, record.expiresAt);
      await waitBriefly('sending the command', dispatcher.send(record), { commandId: record.commandId });
    },
  });
  const scheduler = createExpiryScheduler({ expire: (id) => handler.expire(id), logger, now });

  const unfollow = reads.onFolded((events) => {
    for (const e of events) {
      if (e.type === 'CommandIssued') {
        const record = commands.get(e.data.commandId);
        if (record && isOpen(record.status)) scheduler.arm(record.commandId, record.expiresAt);
      } else if (e.type === 'CommandSucceeded' || e.type === 'CommandFailed' || e.type === 'CommandExpired') {
        scheduler.disarm(e.data.commandId);
      }
    }
  });

  const ready = (async () => {
    await reads.waitFor(await deps.log.lastSeq());
    for (const record of commands.open()) scheduler.arm(record.commandId, record.expiresAt);
    // The embedded broker keeps retained messages in memory only: every start publishes the documents again.
    for (const s of desired.all()) {
      await downlink
        .publishDesired(s.deviceId, { version: s.version, state: s.state })
        .catch((err: unknown) =>
          logger.warn({ err, deviceId: s.deviceId }, 'could not publish the desired document'),
        );
    }
    logger.info({ openCommands: scheduler.size() }, 'command side ready');
  })();
  ready.catch((err: unknown) => logger.error({ err }, 'command side did not start'));

  // Deliveries wait for the catch-up: before it the read model may not know a device's open commands yet.
  downlink.onReady((r) => {
    void ready
      .then(() => dispatcher.deliverOpen(r))
      .catch((err: unknown) => logger.warn({ err, deviceId: r.deviceId }, 'could not deliver open commands'));
  });
  downlink.onDelivered((deviceId, commandId, clientId) => {
    void handler
      .recordDelivery(deviceId, commandId, clientId)
      .catch((err: unknown) => logger.warn({ err, deviceId, commandId }, 'could not record a delivery'));
  });

  return {
    handler,
    downlink,
    ready,
    armed: () => scheduler.size(),
    async close() {
      unfollow();
      await scheduler.close();
      await handler.stop();
      await downlink.close();
    },
  };
}
