import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyRateGuard } from './body-rate.guard';

/** The parts of a request, response and socket the guard reads, with what it did to them. */
function fakeRequest(headers: Record<string, string> = { 'content-length': '1000000' }) {
  const socket: { bytesRead: number; destroyed: boolean; destroy: jest.Mock } = { bytesRead: 500, destroyed: false, destroy: jest.fn() };
  socket.destroy.mockImplementation(() => (socket.destroyed = true));
  const listeners: Record<string, ((this: unknown) => void)[]> = {};
  const req = {
    complete: false,
    readableFlowing: true as boolean | null,
    headers,
    socket,
    on(event: string, fn: (this: unknown) => void) {
      (listeners[event] ??= []).push(fn);
      return req;
    },
    /** The body has been read: Node sets `complete` and emits 'end'. */
    finish() {
      req.complete = true;
      for (const fn of listeners.end ?? []) fn.call(req);
    },
  };
  const res: { headersSent: boolean; status: number; head: Record<string, unknown>; body: string; writeHead: jest.Mock; end: jest.Mock } = {
    headersSent: false,
    status: 0,
    head: {},
    body: '',
    writeHead: jest.fn(),
    end: jest.fn(),
  };
  res.writeHead.mockImplementation((status: number, head: Record<string, unknown>) => {
    res.status = status;
    res.head = head;
    res.headersSent = true;
  });
  res.end.mockImplementation((body: string) => (res.body = body));
  return { req, res, socket, watch: (g: BodyRateGuard) => g.watch(req as unknown as IncomingMessage, res as unknown as ServerResponse) };
}

const MIN = 8_192;
const WINDOW = 10_000;

describe('BodyRateGuard', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  function guard(min = MIN, windowMs = WINDOW) {
    return new BodyRateGuard({ minBytesPerSecond: min, windowMs });
  }

  it('sweeps every fifth of the window, between 50 ms and 1 s', () => {
    expect(guard(MIN, 10_000).sweepMs).toBe(1_000);
    expect(guard(MIN, 1_000).sweepMs).toBe(200);
    expect(guard(MIN, 100).sweepMs).toBe(50);
  });

  it('cuts off a trickle after one window: 408 request_timeout, Connection: close, OpenAI-shaped', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    // 10 bytes a second: far below 8 KiB/s.
    for (let s = 1; s < 10; s++) {
      f.socket.bytesRead += 10;
      jest.advanceTimersByTime(1_000);
      expect(f.res.writeHead).not.toHaveBeenCalled();
    }
    f.socket.bytesRead += 10;
    jest.advanceTimersByTime(1_000);
    expect(f.res.status).toBe(408);
    expect(f.res.head).toMatchObject({ 'content-type': 'application/json', connection: 'close' });
    const body = JSON.parse(f.res.body);
    expect(body).toEqual({ error: { message: expect.stringContaining('8192 bytes/s'), type: 'invalid_request_error', param: null, code: 'request_timeout' } });
    expect(f.res.head['content-length']).toBe(Buffer.byteLength(f.res.body));
    expect(g.timedOut).toBe(1);
    expect(g.size).toBe(0);
    // …and the socket goes even if the client never reads the answer.
    jest.advanceTimersByTime(1_000);
    expect(f.socket.destroy).toHaveBeenCalled();
  });

  it('lets a body at the minimum rate or above through, however many windows it takes', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    // 50 MB at 1 MB/s would be 50 windows; 100 s of it at exactly 8 KiB/s is the edge case.
    for (let s = 0; s < 100; s++) {
      f.socket.bytesRead += MIN;
      jest.advanceTimersByTime(1_000);
    }
    expect(f.res.writeHead).not.toHaveBeenCalled();
    expect(g.size).toBe(1);
    f.req.finish();
    expect(g.size).toBe(0);
    expect(g.timedOut).toBe(0);
  });

  it('judges the average over the window, not each second: bursts are fine', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    // Nothing for 9 s, then the whole window's worth at once.
    jest.advanceTimersByTime(9_000);
    f.socket.bytesRead += MIN * 10;
    jest.advanceTimersByTime(1_000);
    expect(f.res.writeHead).not.toHaveBeenCalled();
    // The next window starts empty: nothing more → cut off at its end.
    jest.advanceTimersByTime(10_000);
    expect(f.res.status).toBe(408);
  });

  it('one byte short of the minimum over a window is refused', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    f.socket.bytesRead += MIN * 10 - 1;
    jest.advanceTimersByTime(10_000);
    expect(f.res.status).toBe(408);
  });

  it('does not judge a body the app is not reading (paused), and restarts its window when reading resumes', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    f.req.readableFlowing = false;
    jest.advanceTimersByTime(30_000);
    expect(f.res.writeHead).not.toHaveBeenCalled();
    f.req.readableFlowing = true;
    jest.advanceTimersByTime(9_000);
    expect(f.res.writeHead).not.toHaveBeenCalled();
    jest.advanceTimersByTime(2_000);
    expect(f.res.status).toBe(408);
  });

  it('does not judge anyone on a sweep that ran late (the event loop was blocked: bytes may be unread)', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    jest.setSystemTime(Date.now() + 15_000);
    g.sweep();
    expect(f.res.writeHead).not.toHaveBeenCalled();
    // A fresh window from there.
    jest.advanceTimersByTime(9_000);
    expect(f.res.writeHead).not.toHaveBeenCalled();
    jest.advanceTimersByTime(2_000);
    expect(f.res.status).toBe(408);
  });

  it('destroys the connection when a response has already started', () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    f.res.headersSent = true;
    jest.advanceTimersByTime(11_000);
    expect(f.res.writeHead).not.toHaveBeenCalled();
    expect(f.socket.destroy).toHaveBeenCalled();
    expect(g.timedOut).toBe(1);
  });

  it('watches only requests with a body, and nothing when turned off (0)', () => {
    const g = guard();
    fakeRequest({}).watch(g);
    fakeRequest({ 'content-length': '0' }).watch(g);
    expect(g.size).toBe(0);
    fakeRequest({ 'transfer-encoding': 'chunked' }).watch(g);
    expect(g.size).toBe(1);
    const off = guard(0);
    fakeRequest().watch(off);
    expect(off.size).toBe(0);
    g.stop();
  });

  it("forgets a request as soon as its body has been read ('end'), without waiting for a sweep", () => {
    const g = guard();
    const f = fakeRequest();
    f.watch(g);
    expect(g.size).toBe(1);
    f.req.finish();
    expect(g.size).toBe(0);
    g.stop();
  });

  it('drops finished and closed requests at the next sweep and stops its timer when none are left', () => {
    const g = guard();
    const a = fakeRequest();
    const b = fakeRequest();
    a.watch(g);
    b.watch(g);
    expect(jest.getTimerCount()).toBe(1);
    a.req.complete = true;
    b.socket.destroyed = true;
    jest.advanceTimersByTime(1_000);
    expect(g.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    // A new body starts it again.
    fakeRequest().watch(g);
    expect(jest.getTimerCount()).toBe(1);
    g.stop();
  });
});
