/**
 * A one-line reason for a connection error. Node reports a refused `localhost` (tried on ::1 and 127.0.0.1)
 * as an AggregateError with an empty message, so the inner errors and the code have to be looked at too.
 */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    const inner = err.errors.map((e) => describeError(e)).filter((m) => m !== '');
    if (inner.length > 0) return [...new Set(inner)].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message !== '' ? err.message : (code ?? err.name);
  }
  return String(err);
}
