/** What one response of the connection leaves behind for the next `response.create` to continue. */
interface Baseline {
  readonly responseId: string;
  /** The full input the response was asked with, then the output items it returned (in order). */
  readonly items: readonly unknown[];
  readonly bytes: number;
}

/**
 * The history of one Responses WebSocket. Codex sends each turn after the first as `previous_response_id` (the
 * connection's last response) plus only the new input items; the gateway talks HTTP to providers, which need
 * the whole input, so it keeps the last request's input and the response's output items to rebuild it.
 *
 * Only the last response is kept (what Codex continues from), within `maxBytes` (approximate: the JSON sizes
 * as received). A history that would exceed it is dropped: the next incremental request is answered
 * `previous_response_not_found`, and Codex resends its full history on a new connection.
 */
export class SocketHistory {
  private last?: Baseline;

  constructor(private readonly maxBytes: number) {}

  /** Bytes held (the cap's measure). */
  get bytes(): number {
    return this.last?.bytes ?? 0;
  }

  /**
   * The full input of a request that continues `previousId` with `input`, or undefined when this connection
   * does not know that response (a new connection, another process, or a history over the cap).
   */
  expand(previousId: string, input: readonly unknown[]): unknown[] | undefined {
    const last = this.last;
    return last?.responseId === previousId ? [...last.items, ...input] : undefined;
  }

  /**
   * Keeps response `responseId` as what the next request may continue: `input` as sent upstream, `output` the
   * items it returned; `bytes` their approximate size. Over the cap nothing is kept.
   */
  commit(responseId: string, input: readonly unknown[], output: readonly unknown[], bytes: number): void {
    this.last = bytes > this.maxBytes ? undefined : { responseId, items: output.length ? [...input, ...output] : input, bytes };
  }

  /** Forgets the history (a failed response: Codex resends in full after an error). */
  clear(): void {
    this.last = undefined;
  }
}
