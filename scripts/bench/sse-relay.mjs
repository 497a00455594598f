// Micro-benchmark of the SSE relay's CPU on a Codex-shaped Responses stream (issue 16), after `npm run build`:
//   node scripts/bench/sse-relay.mjs [seconds per row]
// The stream: created and in_progress (echoing ~3 kB of tools), 200 small `response.output_text.delta` events,
// the done events and a ~6 kB `response.completed`, one upstream chunk per event (as a model streams them) and
// again in 16 kB chunks. Rows: the string path (SseReader + `events`, as before), the byte path (`bytes`), and
// `bare` (the chunks passed on untouched, the floor). "+ socket": each write goes to a loopback TCP socket, the
// process's whole CPU (the reading side included, the same for every row) per stream.
import net from 'node:net';
import { once } from 'node:events';

const mod = await import('../../dist/libs/providers/src/index.js');
const { OpenAIResponsesObserver, OpenAIAdapter, SseReader } = mod.default ?? mod;

const seconds = Number(process.argv[2] ?? 3);
const adapter = new OpenAIAdapter();
const meter = () => ({
  usage: {},
  usageReported: false,
  status: 200,
  errorCode: null,
  noteServiceTier() {},
});

const tools = Array.from({ length: 12 }, (_, i) => ({
  type: 'function',
  name: `tool_${i}`,
  description: 'Runs a shell command in the workspace and returns its output; '.repeat(2),
  parameters: { type: 'object', properties: { cmd: { type: 'string' }, workdir: { type: 'string' } }, required: ['cmd'] },
}));
const response = (status, extra = {}) => ({ id: 'resp_bench1', object: 'response', status, model: 'gpt-5', tools, ...extra });
const frame = (o) => `event: ${o.type}\ndata: ${JSON.stringify(o)}\n\n`;
let seq = 0;
const events = [
  frame({ type: 'response.created', sequence_number: seq++, response: response('in_progress') }),
  frame({ type: 'response.in_progress', sequence_number: seq++, response: response('in_progress') }),
  frame({
    type: 'response.output_item.added',
    sequence_number: seq++,
    output_index: 0,
    item: { id: 'msg_1', type: 'message', role: 'assistant', content: [] },
  }),
  frame({
    type: 'response.content_part.added',
    sequence_number: seq++,
    item_id: 'msg_1',
    output_index: 0,
    content_index: 0,
    part: { type: 'output_text', text: '' },
  }),
];
const words = ['The ', 'ledg', 'er r', 'ow i', 's wr', 'itté', 'n 🙂 '];
let text = '';
for (let i = 0; i < 200; i++) {
  const delta = words[i % words.length];
  text += delta;
  events.push(frame({ type: 'response.output_text.delta', sequence_number: seq++, item_id: 'msg_1', output_index: 0, content_index: 0, delta, logprobs: [] }));
}
events.push(frame({ type: 'response.output_text.done', sequence_number: seq++, item_id: 'msg_1', output_index: 0, content_index: 0, text }));
const item = { id: 'msg_1', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
events.push(frame({ type: 'response.output_item.done', sequence_number: seq++, output_index: 0, item }));
const usage = {
  input_tokens: 5000,
  input_tokens_details: { cached_tokens: 4096 },
  output_tokens: 200,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 5200,
};
events.push(frame({ type: 'response.completed', sequence_number: seq++, response: response('completed', { output: [item], usage }) }));

const perEvent = events.map((e) => Buffer.from(e));
const whole = Buffer.concat(perEvent);
const big = [];
for (let i = 0; i < whole.length; i += 16384) big.push(whole.subarray(i, i + 16384));

function oldPath(chunks, write) {
  const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'gpt-5');
  const reader = new SseReader();
  for (const c of chunks) {
    const out = o.events(reader.push(c));
    if (out) write(out);
  }
  const tail = o.events(reader.end());
  if (tail) write(tail);
  o.end();
  return o.deltas;
}

function newPath(chunks, write) {
  const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'gpt-5');
  for (const c of chunks) {
    const out = o.bytes(c);
    if (out.length) write(out);
  }
  const tail = o.bytesEnd();
  if (tail) write(tail);
  o.end();
  return o.deltas;
}

function bare(chunks, write) {
  for (const c of chunks) write(c);
  return 200;
}

/** µs of process CPU per stream, over `seconds`. Without a socket, a string write is charged its UTF-8 encoding. */
async function measure(path, chunks, socket) {
  let sink = 0;
  const write = socket
    ? (d) => socket.write(d)
    : (d) => {
        sink += typeof d === 'string' ? Buffer.byteLength(d) : d.length;
      };
  if (path(chunks, write) !== 200) throw new Error('wrong delta count');
  const t0 = Date.now();
  const c0 = process.cpuUsage();
  let n = 0;
  while (Date.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 50; i++) path(chunks, write);
    n += 50;
    if (socket && socket.writableLength > 1 << 20) await once(socket, 'drain');
  }
  if (socket && socket.writableLength) await once(socket, 'drain');
  const c = process.cpuUsage(c0);
  return { us: (c.user + c.system) / n, sink };
}

const server = net.createServer((s) => s.resume());
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const socket = net.connect(server.address().port, '127.0.0.1');
await once(socket, 'connect');

console.log(`stream: ${events.length} events, ${whole.length} bytes; completed event ${perEvent.at(-1).length} bytes; ${seconds}s per row`);
for (const [chunking, chunks] of [
  ['one chunk per event', perEvent],
  ['16 kB chunks', big],
]) {
  for (const sock of [undefined, socket]) {
    const row = {};
    for (const [name, path] of [
      ['string path', oldPath],
      ['byte path', newPath],
      ['bare', bare],
    ])
      row[name] = (await measure(path, chunks, sock)).us;
    const f = (v) => v.toFixed(1).padStart(7);
    console.log(
      `${chunking.padEnd(20)} ${sock ? '+ socket' : 'in memory'}: string ${f(row['string path'])} µs  byte ${f(row['byte path'])} µs  bare ${f(row.bare)} µs  ` +
        `(string/byte ${(row['string path'] / row['byte path']).toFixed(2)}×)`,
    );
  }
}
socket.destroy();
server.close();
