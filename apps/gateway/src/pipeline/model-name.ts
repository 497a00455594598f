/** Model names are map keys, metric labels, log fields and ledger cells: bounded, and of the characters real model ids use. */
export const MAX_MODEL_CHARS = 256;
export const MODEL_NAME = /^[A-Za-z0-9\-_.:/@+]+$/;
/** What the ledger and logs keep for a request whose `model` is not a plausible model name. */
export const INVALID_MODEL_MARKER = '(invalid)';

/**
 * The model name to record for a request (ledger row, log line), whatever the request was: a refused
 * request's name is client input that ends up in reports and CSV exports, so it is kept only when it is
 * a plausible model name (else a fixed marker), never 256 unchecked characters.
 */
export function recordedModelName(given: unknown): string | null {
  if (typeof given !== 'string' || given === '') return null;
  return given.length <= MAX_MODEL_CHARS && MODEL_NAME.test(given) ? given : INVALID_MODEL_MARKER;
}
