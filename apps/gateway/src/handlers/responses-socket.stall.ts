import type { WebSocket } from 'ws';

/** Bytes of a message that has begun to arrive but is not complete: ws 8's receiver state (private fields). */
export function pendingBytes(ws: WebSocket): number {
  const r = (ws as unknown as { _receiver?: { _bufferedBytes?: number; _totalPayloadLength?: number } })._receiver;
  return (r?._bufferedBytes ?? 0) + (r?._totalPayloadLength ?? 0);
}

/**
 * The HTTP body-rate rule (BODY_MIN_RATE_BYTES_PER_S over BODY_RATE_WINDOW_MS) for WebSocket messages: a message
 * of up to BODY_LIMIT is buffered until its last byte, so one started and then trickled (or stalled) would hold
 * that memory until the idle timeout, the client answering the heartbeat all along.
 */
export class StallWatch {
  private since = 0;
  private bytesAt = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: { readonly bytesRead: number },
    private readonly minBytesPerSecond: number,
    private readonly windowMs: number,
  ) {}

  /** Whether a message has been arriving slower than the minimum rate for at least the window (checked at each heartbeat). */
  stalled(now: number): boolean {
    if (this.minBytesPerSecond <= 0 || pendingBytes(this.ws) === 0) {
      this.since = 0;
      return false;
    }
    const elapsed = now - this.since;
    if (!this.since || elapsed < this.windowMs) {
      if (!this.since) [this.since, this.bytesAt] = [now, this.socket.bytesRead];
      return false;
    }
    if (((this.socket.bytesRead - this.bytesAt) * 1000) / elapsed < this.minBytesPerSecond) return true;
    [this.since, this.bytesAt] = [now, this.socket.bytesRead];
    return false;
  }
}
