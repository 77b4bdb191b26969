import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled file of a worker thread of this folder (`name` ends in .js): beside the module that starts it when
 * that module runs compiled; from source (vitest), the one in dist/ (`npm test` builds first).
 */
export function workerFile(name: string): URL {
  const beside = new URL(`./${name}`, import.meta.url);
  return existsSync(fileURLToPath(beside)) ? beside : new URL(`../dist/eventlog/${name}`, import.meta.url);
}
