// A Codex-shaped `/v1/responses` turn for the bench: the request Codex 0.169 sent in the capture
// (test/fixtures/codex/turn2.request.json: its developer messages, environment context, tools with the
// `multi_agent_v1` namespace, `stream`, `store: false`, `include: ["reasoning.encrypted_content"]`,
// `prompt_cache_key`, `client_metadata`), its history grown to about `targetBytes` with the items a long session
// sends back: reasoning (summary + encrypted_content), assistant messages, function_call + function_call_output,
// user messages. Codex 0.169 sends no `instructions` (the system prompt is input[0], a developer message; see
// docs/codex-wire.md), so neither does this body. Deterministic: the same bytes on every run.
import { readFileSync } from 'node:fs';

const WORDS =
  'the gateway reads each request once and forwards the bytes it does not change while the ledger records usage per key and the limits hold budgets per tenant so a session keeps its provider'.split(
    ' ',
  );

/** Deterministic filler text of about `n` characters (word `seed` onwards). */
function text(n, seed) {
  let s = '';
  for (let i = seed; s.length < n; i++) s += WORDS[(i * 7) % WORDS.length] + (i % 13 === 12 ? '.\n' : ' ');
  return s.slice(0, n);
}

/** Deterministic base64-looking opaque blob (OpenAI's encrypted reasoning is `gAAAAA…`, a few KB). */
function blob(n, seed) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let s = 'gAAAAA';
  for (let i = 0; s.length < n; i++) s += abc[(i * 31 + seed * 17 + ((i * i) % 7)) % 64];
  return s;
}

/** One tool-using step of a session: what Codex appends to `input` after the model called a tool. */
function step(i) {
  const call = `call_bench_${String(i).padStart(4, '0')}`;
  return [
    {
      type: 'reasoning',
      id: `rs_bench_${i}`,
      summary: [{ type: 'summary_text', text: `**Inspecting the code**\n\n${text(240, i)}` }],
      encrypted_content: blob(1400, i),
    },
    { type: 'message', id: `msg_bench_${i}`, role: 'assistant', content: [{ type: 'output_text', text: text(300, i + 3) }] },
    {
      type: 'function_call',
      status: 'completed',
      id: `fc_bench_${i}`,
      name: 'exec_command',
      arguments: JSON.stringify({ cmd: `rg -n "ledger" libs/ | head -${40 + i}` }),
      call_id: call,
    },
    {
      type: 'function_call_output',
      id: `fco_bench_${i}`,
      call_id: call,
      output: `Chunk ID: ${(0x360a71 + i).toString(16)}\nWall time: 0.0${i % 10}00 seconds\nProcess exited with code 0\nOriginal token count: 412\nOutput:\n${text(1600, i + 5)}\n`,
    },
    ...(i % 5 === 4 ? [{ type: 'message', id: `msg_bench_user_${i}`, role: 'user', content: [{ type: 'input_text', text: text(160, i + 9) }] }] : []),
  ];
}

/** The turn's body as a string (`model` as given), with about `targetBytes` bytes. */
export function codexTurnBody(model, targetBytes = 100_000) {
  const captured = JSON.parse(readFileSync('test/fixtures/codex/turn2.request.json', 'utf8'));
  const body = { ...captured, model, input: [...captured.input] };
  for (let i = 0; Buffer.byteLength(JSON.stringify(body)) < targetBytes; i++) body.input.push(...step(i));
  body.input.push({ type: 'message', id: 'msg_bench_last', role: 'user', content: [{ type: 'input_text', text: 'Now summarise what you found.' }] });
  return JSON.stringify(body);
}

/** The headers Codex 0.169 sends with a turn (test/fixtures/codex/headers.json), with our bearer. */
export function codexHeaders(authorization) {
  const captured = JSON.parse(readFileSync('test/fixtures/codex/headers.json', 'utf8')).turn2;
  const headers = { ...captured, authorization };
  delete headers.host;
  delete headers['content-length'];
  return headers;
}
