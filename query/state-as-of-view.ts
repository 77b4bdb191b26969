import type { CommandRecord, DesiredState, StateAsOf } from '../processors/read-models.js';
import { viewCommand, type CommandView } from './command-view.js';
import { desiredSummary, viewDesired, type DesiredView } from './desired-view.js';

/** What GET /api/devices/:id/state?at= answers: the device's state as of `at`, and the command side's. */
export interface StateAsOfView extends StateAsOf {
  /** The desired document as of `at` (the highest version set by then), with the delta against `state.reported`. */
  desired?: Omit<DesiredView, 'deviceId' | 'reported'>;
  /** The commands issued by `at`, newest first, each with its status as of `at`. */
  commands?: CommandView[];
}

/** Adds desired state and commands as of the answer's time to it, when there were any by then. */
export function withCommandSideAsOf(
  answer: StateAsOf,
  asOf: { desired: DesiredState | undefined; commands: CommandRecord[] },
): StateAsOfView {
  return {
    ...answer,
    ...(asOf.desired
      ? { desired: desiredSummary(viewDesired(answer.deviceId, asOf.desired, answer.state?.reported)) }
      : {}),
    ...(asOf.commands.length > 0 ? { commands: asOf.commands.map(viewCommand) } : {}),
  };
}
