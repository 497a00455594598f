/** The first restart of a worker that died is quick; one that keeps dying young waits longer, up to 30 s. */
export const RESTART_BASE_MS = 250;
export const RESTART_MAX_MS = 30_000;

/** `failures`: unexpected exits in a row of this worker slot, each within a minute of its start (1 = the first). */
export function restartDelayMs(failures: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, failures - 1));
}
