/**
 * One error class with string codes, so callers branch on `code` and logs stay greppable.
 * Expected outcomes (a duplicate, a rejected payload) are results, not errors; these are for failures.
 */
export const ERROR_CODES = {
  ERR_CONFIG_INVALID: 'configuration is invalid',
  ERR_LOG_CLOSED: 'the event log is closed',
  ERR_LOG_LOCKED: 'another process writes to this event log',
  ERR_LOG_APPEND_FAILED: 'the event log could not append',
  ERR_LOG_CORRUPT: 'the event log failed its integrity check',
  ERR_QUERY_INVALID: 'a query parameter is invalid',
  ERR_URI_TOO_LONG: 'the request URL is longer than the server reads',
  ERR_UNSUPPORTED_MEDIA_TYPE: 'the request body is not JSON',
  ERR_NOT_FOUND: 'not found',
  ERR_UNAUTHORIZED: 'the API token is missing or wrong',
  ERR_CONFLICT: 'it exists already',
  ERR_COMMAND_INVALID: 'the desired-state change or command is invalid',
  ERR_VERSION_CONFLICT: 'the desired document has another version than If-Match named',
  ERR_TOO_MANY_OPEN_COMMANDS: 'the device has too many unanswered commands',
  ERR_UNAVAILABLE: 'this process does not serve that',
  ERR_BROKER_UNREACHABLE: 'the MQTT broker cannot be reached',
  ERR_SINK_WRITE_FAILED: 'an external sink (InfluxDB) did not confirm a write',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class FleetlogError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FleetlogError';
    this.code = code;
  }
}

export function isFleetlogError(err: unknown, code?: ErrorCode): err is FleetlogError {
  return err instanceof FleetlogError && (code === undefined || err.code === code);
}
