import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '../core/errors.js';
import { COMMAND_LIMITS, desiredDocumentProblem, type CommandRequest } from '../core/command-requests.js';
import { isOpen } from '../core/command-status.js';
import type { NewEvent, StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { applyMergePatch, jsonEqual } from '../core/merge-patch.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { CommandRecord, DesiredState, ReadModels } from '../processors/read-models.js';
import { createKeyedQueue } from './keyed-queue.js';

/**
 * What the command side reads (the app hands it the read side): the read models through their types-only interface,
 * and when they show a log position. It decides against them and never opens them itself.
 */
export interface CommandSideReads {
  readModels: Pick<ReadModels, 'devices' | 'desired' | 'commands' | 'status'>;
  /** Resolves once the read models (not the external sinks) have folded through `seq`. */
  waitFor(seq: number): Promise<void>;
  /** Calls `listener` after each folded batch; returns an unsubscribe function. */
  onFolded(listener: (events: readonly StoredEvent[], position: number) => void): () => void;
}

/** Why a change or command was not taken; nothing was appended. Maps onto an HTTP status. */
export interface Refusal {
  status: 400 | 404 | 409 | 429 | 503;
  code: ErrorCode;
  message: string;
  problems?: string[];
}

export type Outcome<T> = { ok: true; value: T } | ({ ok: false } & Refusal);

export interface DesiredChangeResult {
  state: DesiredState;
  /** False when the patch changed nothing: no event, no new version. */
  changed: boolean;
}

/**
 * The write side of desired state and commands: validates against the read models, appends the event to the
 * device's stream, waits until the read models show it, and only then lets it reach the device. Each device's
 * requests are decided one at a time, against read models caught up with the log, so versions count up by one and
 * If-Match is exact. Event ids are derived from what they decide (`{device}:desired:{version}`,
 * `{device}:command:{id}`, `{device}:expired:{id}`), so a second writer deciding the same thing (two API processes
 * on one JetStream log) is told "duplicate" by the log instead of recording it twice.
 */
export interface CommandHandler {
  changeDesired(
    deviceId: string,
    patch: Record<string, unknown>,
    ifMatch: number | '*' | undefined,
  ): Promise<Outcome<DesiredChangeResult>>;
  issueCommand(deviceId: string, request: CommandRequest): Promise<Outcome<CommandRecord>>;
  /** Records CommandExpired if the command is still open (the expiry scheduler calls this). */
  expire(commandId: string): Promise<void>;
  /** Records CommandDelivered for a command of this device (the device's PUBACK). */
  recordDelivery(deviceId: string, commandId: string, clientId: string): Promise<void>;
  /** Whether `commandId` was issued to `deviceId` (the broker lets a device reply only to its own commands). */
  isCommandOf(deviceId: string, commandId: string): boolean;
  /** Takes no new requests (they answer 503) and resolves once every one under way has finished. */
  stop(): Promise<void>;
}

export interface CommandHandlerDeps {
  log: Pick<EventLog, 'append' | 'lastSeq'>;
  reads: Pick<CommandSideReads, 'readModels' | 'waitFor'>;
  /** Devices known outside the read models (a credential issued, nothing sent yet). */
  knownElsewhere?: (deviceId: string) => boolean;
  /** Called once a change is recorded and folded: publish the document. */
  onDesiredChanged(state: DesiredState): Promise<void>;
  /** Called once a command is recorded and folded: send it, arm its expiry. */
  onCommandIssued(record: CommandRecord): Promise<void>;
  logger: Logger;
  now?: () => number;
}

const READ_MODELS = ['desired-state', 'commands'];

export function createCommandHandler(deps: CommandHandlerDeps): CommandHandler {
  const { log } = deps;
  const { readModels, waitFor } = deps.reads;
  const { devices, desired, commands } = readModels;
  const now = deps.now ?? Date.now;
  const queue = createKeyedQueue();
  const logger = deps.logger.child({ component: 'command-handler' });
  let stopping = false;

  /** The read models as of the log's head now, or why they cannot answer. */
  async function caughtUp(): Promise<Refusal | undefined> {
    if (stopping)
      return {
        status: 503,
        code: 'ERR_UNAVAILABLE',
        message: 'fleetlog is stopping; try again once it is back',
      };
    await waitFor(await log.lastSeq());
    const failed = readModels.status().find((s) => READ_MODELS.includes(s.name) && s.state === 'failed');
    return failed
      ? {
          status: 503,
          code: 'ERR_UNAVAILABLE',
          message: `the ${failed.name} read model stopped at event seq ${failed.failedSeq ?? '?'} (${failed.error ?? 'see the log'}); fix it and rebuild it before changing devices`,
        }
      : undefined;
  }

  function known(deviceId: string): boolean {
    return (
      devices.get(deviceId) !== undefined ||
      desired.get(deviceId) !== undefined ||
      (deps.knownElsewhere?.(deviceId) ?? false)
    );
  }

  const unknown = (deviceId: string): Refusal => ({
    status: 404,
    code: 'ERR_NOT_FOUND',
    message: `unknown device "${deviceId}": it has sent nothing and has no credential`,
  });

  /** Appends one event and waits until the read models show it; undefined when the log already had its id. */
  async function record(event: NewEvent): Promise<number | undefined> {
    const [outcome] = await log.append([event]);
    if (outcome?.status !== 'appended') return undefined;
    await waitFor(outcome.seq);
    return outcome.seq;
  }

  return {
    changeDesired(deviceId, patch, ifMatch) {
      return queue.run(deviceId, async (): Promise<Outcome<DesiredChangeResult>> => {
        const unavailable = await caughtUp();
        if (unavailable) return { ok: false, ...unavailable };
        if (!known(deviceId)) return { ok: false, ...unknown(deviceId) };
        const current = desired.get(deviceId) ?? { deviceId, version: 0, state: {}, updatedAt: null, seq: 0 };
        if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current.version) {
          return {
            ok: false,
            status: 409,
            code: 'ERR_VERSION_CONFLICT',
            message: `the desired document of "${deviceId}" is at version ${current.version}, not ${ifMatch}: read it again and resend the change with If-Match: ${current.version}`,
          };
        }
        const state = applyMergePatch(current.state, patch) as Record<string, unknown>;
        if (jsonEqual(state, current.state)) return { ok: true, value: { state: current, changed: false } };
        const tooBig = desiredDocumentProblem(state);
        if (tooBig !== undefined) {
          return { ok: false, status: 400, code: 'ERR_COMMAND_INVALID', message: tooBig, problems: [tooBig] };
        }
        const version = current.version + 1;
        const t = now();
        const seq = await record({
          id: `${deviceId}:desired:${version}`,
          deviceId,
          type: 'DesiredStateChanged',
          time: t,
          receivedAt: t,
          data: { version, patch, state },
        });
        if (seq === undefined) {
          return {
            ok: false,
            status: 409,
            code: 'ERR_VERSION_CONFLICT',
            message: `another writer recorded version ${version} of "${deviceId}" first: read it again and resend`,
          };
        }
        const next: DesiredState = { deviceId, version, state, updatedAt: t, seq };
        await deps.onDesiredChanged(next);
        logger.info({ deviceId, version }, 'desired state changed');
        return { ok: true, value: { state: next, changed: true } };
      });
    },

    issueCommand(deviceId, request) {
      return queue.run(deviceId, async (): Promise<Outcome<CommandRecord>> => {
        const unavailable = await caughtUp();
        if (unavailable) return { ok: false, ...unavailable };
        if (!known(deviceId)) return { ok: false, ...unknown(deviceId) };
        const open = commands.openFor(deviceId).length;
        if (open >= COMMAND_LIMITS.openPerDevice) {
          return {
            ok: false,
            status: 429,
            code: 'ERR_TOO_MANY_OPEN_COMMANDS',
            message: `"${deviceId}" has ${open} unanswered commands (the limit is ${COMMAND_LIMITS.openPerDevice}); wait for answers or expiries`,
          };
        }
        const commandId = randomUUID();
        const t = now();
        const seq = await record({
          id: `${deviceId}:command:${commandId}`,
          deviceId,
          type: 'CommandIssued',
          time: t,
          receivedAt: t,
          data: {
            commandId,
            name: request.name,
            params: request.params,
            timeoutMs: request.timeoutMs,
            expiresAt: t + request.timeoutMs,
          },
        });
        const issued = seq === undefined ? undefined : commands.get(commandId);
        if (!issued) throw new Error(`command ${commandId} was appended but is not in the read model`);
        await deps.onCommandIssued(issued);
        logger.info({ deviceId, commandId, name: request.name }, 'command issued');
        return { ok: true, value: issued };
      });
    },

    async expire(commandId) {
      const first = commands.get(commandId);
      if (!first) return;
      await queue.run(first.deviceId, async () => {
        // Stopping, or a read model failed: it stays open in the log and is armed again at the next start.
        if (await caughtUp()) return;
        const current = commands.get(commandId);
        if (!current || !isOpen(current.status)) return;
        await record({
          id: `${current.deviceId}:expired:${commandId}`,
          deviceId: current.deviceId,
          type: 'CommandExpired',
          // When it expired, by definition: also when the server was down at that moment and records it later.
          time: current.expiresAt,
          receivedAt: now(),
          data: { commandId, expiresAt: current.expiresAt },
        });
        logger.info({ deviceId: current.deviceId, commandId }, 'command expired');
      });
    },

    recordDelivery(deviceId, commandId, clientId) {
      // Queued like the rest, so a clean stop (drain) waits for it.
      return queue.run(deviceId, async () => {
        // Also once answered: a device may send its reply before its PUBACK. Either way it is a fact worth keeping.
        const current = commands.get(commandId);
        if (stopping || !current || current.deviceId !== deviceId) return;
        const t = now();
        await log.append([
          {
            id: randomUUID(),
            deviceId,
            type: 'CommandDelivered',
            time: t,
            receivedAt: t,
            data: { commandId, clientId },
          },
        ]);
      });
    },

    isCommandOf(deviceId, commandId) {
      return commands.get(commandId)?.deviceId === deviceId;
    },

    async stop() {
      stopping = true;
      await queue.drain();
    },
  };
}
