// Child process: the project's fake provider (test/support/fake-provider.ts, each provider's real wire format)
// with a fixed small latency, for the benchmark.
//   node fake-upstream.mjs <latencyMs> <chunkDelayMs> <streamChunks> [openai|openrouter|ollama] [replyChars]
// `replyChars` > 0 makes the reply that long, so a stream has `streamChunks` deltas (the Codex-shaped rows: 200).
const mod = await import('../../dist/test/support/fake-provider.js');
const { FakeProvider } = mod.default ?? mod;
const [latencyMs = '2', chunkDelayMs = '0', streamChunks = '5', flavor = 'openai', replyChars = '0'] = process.argv.slice(2);
// About 4 characters per delta, as a model's tokens are; deterministic.
const words = 'The ledger row is written before the last byte, and the limits are settled with it. ';
const replyText = Number(replyChars) > 0 ? words.repeat(Math.ceil(Number(replyChars) / words.length)).slice(0, Number(replyChars)) : '';
const fake = await FakeProvider.start({
  flavor,
  latencyMs: Number(latencyMs),
  chunkDelayMs: Number(chunkDelayMs),
  streamChunks: Number(streamChunks),
  replyText,
});
// The fake records every request for tests; a benchmark must not grow memory with it.
setInterval(() => (fake.received.length = 0), 1000).unref();
process.send?.({ port: fake.port, url: fake.baseUrl });
process.on('SIGTERM', () => fake.close().then(() => process.exit(0)));
