import type { WebSocket } from 'ws';
import { StallWatch } from './responses-socket.stall';

describe('StallWatch', () => {
  const setup = (min = 1000, windowMs = 10_000) => {
    const receiver = { _bufferedBytes: 0, _totalPayloadLength: 0 };
    const socket = { bytesRead: 0 };
    const watch = new StallWatch({ _receiver: receiver } as unknown as WebSocket, socket, min, windowMs);
    return { receiver, socket, watch };
  };

  it('a message trickling below the rate for a window is stalled; none pending never is', () => {
    const { receiver, socket, watch } = setup();
    expect(watch.stalled(0)).toBe(false);
    expect(watch.stalled(60_000)).toBe(false);
    receiver._bufferedBytes = 10;
    expect(watch.stalled(1)).toBe(false);
    socket.bytesRead += 5_000; // 500 B/s
    expect(watch.stalled(5_000)).toBe(false); // within the window
    expect(watch.stalled(10_001)).toBe(true);
  });

  it('a slow but steady upload above the rate is not; a completed message resets the watch', () => {
    const { receiver, socket, watch } = setup();
    receiver._totalPayloadLength = 1;
    expect(watch.stalled(1)).toBe(false);
    socket.bytesRead += 20_000; // 2 kB/s
    expect(watch.stalled(10_001)).toBe(false);
    socket.bytesRead += 11_000;
    expect(watch.stalled(20_001)).toBe(false);
    receiver._totalPayloadLength = 0;
    expect(watch.stalled(40_000)).toBe(false);
    receiver._bufferedBytes = 3; // a new message: its own window
    expect(watch.stalled(40_001)).toBe(false);
    expect(watch.stalled(45_000)).toBe(false);
  });

  it('BODY_MIN_RATE_BYTES_PER_S=0 turns it off', () => {
    const { receiver, watch } = setup(0);
    receiver._bufferedBytes = 10;
    expect(watch.stalled(1)).toBe(false);
    expect(watch.stalled(1_000_000)).toBe(false);
  });
});
