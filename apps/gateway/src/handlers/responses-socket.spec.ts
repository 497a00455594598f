import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { SocketHistory } from './responses-socket.history';
import { SocketSink } from './responses-socket.sink';

describe('SocketHistory', () => {
  it('expands a continuation of the last response into the whole input: input, output, then the new items', () => {
    const h = new SocketHistory(1000);
    expect(h.expand('resp_1', [{ n: 3 }])).toBeUndefined(); // nothing held: unknown
    h.commit('resp_1', [{ n: 1 }], [{ n: 2 }], 30);
    expect(h.bytes).toBe(30);
    expect(h.expand('resp_1', [{ n: 3 }])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(h.expand('resp_0', [])).toBeUndefined(); // only the last response continues
    h.clear();
    expect(h.expand('resp_1', [])).toBeUndefined();
  });

  it('keeps nothing over its cap (the next continuation is unknown: Codex resends in full)', () => {
    const h = new SocketHistory(100);
    h.commit('resp_1', [{ n: 1 }], [], 101);
    expect(h.bytes).toBe(0);
    expect(h.expand('resp_1', [])).toBeUndefined();
  });
});

/** A WebSocket's sending side: what was sent, in order. */
function socket(): { ws: WebSocket; sent: any[] } {
  const sent: any[] = [];
  const ws = Object.assign(new EventEmitter(), {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    send: (d: string, cb?: () => void) => {
      sent.push(JSON.parse(d));
      cb?.();
    },
  });
  return { ws: ws as unknown as WebSocket, sent };
}

describe('SocketSink', () => {
  it('sends each SSE event (split anywhere) as one message and notes the output items and the completed id', () => {
    const { ws, sent } = socket();
    const sink = new SocketSink(ws, 'req_1');
    sink.writeHead(200, { 'content-type': 'text/event-stream' });
    const item = { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'hi' }] };
    const sse = [
      `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', response: { id: 'resp_9' } })}\n\n`,
      `event: response.output_item.done\ndata: ${JSON.stringify({ type: 'response.output_item.done', item })}\n\n`,
      `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', response: { id: 'resp_9' } })}\n\n`,
    ].join('');
    expect(sink.write(sse.slice(0, 50))).toBe(true);
    sink.write(sse.slice(50));
    sink.end();
    expect(sent.map((m) => m.type)).toEqual(['response.created', 'response.output_item.done', 'response.completed']);
    expect(sink.items).toEqual([item]);
    expect(sink.responseId).toBe('resp_9');
    expect(sink.writableEnded).toBe(true);
  });

  it("turns the pipeline's JSON error into one error event: status, the error, the limits' headers", () => {
    const { ws, sent } = socket();
    const sink = new SocketSink(ws, 'req_2');
    sink.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3', 'x-ratelimit-remaining-requests': '0', 'x-secret-ish': 'no' });
    sink.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } }));
    expect(sent).toEqual([
      {
        type: 'error',
        status: 429,
        error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null },
        headers: { 'x-request-id': 'req_2', 'retry-after': '3', 'x-ratelimit-remaining-requests': '0' },
      },
    ]);
    expect(sink.responseId).toBeUndefined();
  });

  it("emits 'close' when the socket closes before the answer ended (the pipeline aborts the upstream)", () => {
    const { ws } = socket();
    const sink = new SocketSink(ws, 'req_3');
    const closed = jest.fn();
    sink.on('close', closed);
    ws.emit('close');
    expect(closed).toHaveBeenCalledTimes(1);
  });
});
