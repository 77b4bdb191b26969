/**
 * Shape limits for JSON documents taken from outside (device bodies, desired state, command parameters), so one
 * document cannot make every later fold and query slow: nesting depth and total keys and items.
 */
export const JSON_SHAPE_LIMITS = { depth: 16, keys: 1000 } as const;

/** The first limit `root` crosses, as a sentence naming `what`; undefined when it fits. Walks without recursion. */
export function jsonShapeProblem(root: unknown, what: string): string | undefined {
  let keys = 0;
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 1 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof value !== 'object' || value === null) continue;
    if (depth > JSON_SHAPE_LIMITS.depth) return `${what} nests deeper than ${JSON_SHAPE_LIMITS.depth} levels`;
    const children = Array.isArray(value) ? (value as unknown[]) : Object.values(value);
    keys += children.length;
    if (keys > JSON_SHAPE_LIMITS.keys)
      return `${what} has more than ${JSON_SHAPE_LIMITS.keys} keys and items`;
    for (const child of children) stack.push({ value: child, depth: depth + 1 });
  }
  return undefined;
}
