import {
  DiscardPolicy,
  NatsError,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamManager,
  type StreamInfo,
} from 'nats';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export interface StreamsOptions {
  /** Events stream: `<prefix>.<device token>`, one subject per device. */
  stream: string;
  prefix: string;
  /** Id index stream: `<indexPrefix>.<device token>`, the last message per subject only. */
  indexStream: string;
  indexPrefix: string;
  /** Set when fleetlog creates the streams; an existing stream keeps its own (a warning says so). */
  replicas: number | undefined;
  duplicateWindowMs: number;
  logger: Logger;
}

function apiErrorCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}

/** 10059: stream not found. */
const ERR_STREAM_NOT_FOUND = 10059;
/** 10074: "replicas > 1 not supported in non-clustered mode". */
const ERR_REPLICAS_NOT_SUPPORTED = 10074;
/** 10005: "no suitable peers for placement": fewer JetStream servers than replicas have joined the cluster. */
const ERR_NO_PEERS = 10005;
/** How long creation waits for a cluster whose servers are still joining, ms. */
const JOIN_WAIT_MS = 15_000;

/**
 * Opens (creating when missing) the events stream and its id index stream, and checks that an existing
 * events stream holds fleetlog's subjects. Returns the events stream's info.
 */
export async function openStreams(jsm: JetStreamManager, options: StreamsOptions): Promise<StreamInfo> {
  const { stream, prefix, replicas, logger } = options;
  const tooFewServers = (err: unknown, name: string) =>
    apiErrorCode(err) === ERR_REPLICAS_NOT_SUPPORTED || apiErrorCode(err) === ERR_NO_PEERS
      ? new FleetlogError(
          'ERR_CONFIG_INVALID',
          `cannot create stream ${name} with ${replicas} replicas: ${(err as Error).message}. Run a NATS cluster of at least ${replicas} servers, or set --nats-replicas 1 (FLEETLOG_NATS_REPLICAS) for one server.`,
        )
      : err;

  const ensure = async (name: string, create: () => Promise<StreamInfo>): Promise<StreamInfo> => {
    try {
      return await jsm.streams.info(name);
    } catch (err) {
      if (apiErrorCode(err) !== ERR_STREAM_NOT_FOUND) throw err;
      // A cluster that is starting places replicas only once enough of its servers have joined.
      for (const deadline = Date.now() + JOIN_WAIT_MS; ;) {
        try {
          return await create();
        } catch (createErr) {
          if (apiErrorCode(createErr) !== ERR_NO_PEERS || Date.now() > deadline)
            throw tooFewServers(createErr, name);
          logger.info({ stream: name }, 'waiting for the cluster to place the stream replicas');
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
  };

  const info = await ensure(stream, () =>
    jsm.streams.add({
      name: stream,
      subjects: [`${prefix}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: replicas ?? 1,
      duplicate_window: nanos(options.duplicateWindowMs),
      // Single messages are never deleted, so `seq` stays gapless; retention purges a prefix.
      deny_delete: true,
    }),
  );
  if (!info.config.subjects.includes(`${prefix}.>`))
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `stream ${stream} exists with subjects ${info.config.subjects.join(', ')}, not ${prefix}.>`,
    );
  if (replicas !== undefined && info.config.num_replicas !== replicas) {
    // Changing the replicas of a live stream is an operator's decision (`nats stream edit`), not a side effect.
    logger.warn(
      { replicas: info.config.num_replicas, configured: replicas },
      'stream exists with another replica count; keeping it',
    );
  }
  await ensure(options.indexStream, () =>
    jsm.streams.add({
      name: options.indexStream,
      subjects: [`${options.indexPrefix}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      // The events stream's replica count: the index must survive what the events survive.
      num_replicas: info.config.num_replicas,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.Old,
    }),
  );
  return info;
}
