import { Errors } from '@gw/common';
import parallelEvents from '../translate/__fixtures__/parallel-tools.events.json';
import { OpenAIAdapter } from '../providers/openai/openai.adapter';
import { OpenAIResponsesObserver } from './openai-responses.observer';
import { dataOf, drive, driveBytes, meter, sseBytes } from './dialects.spec-helpers';

const adapter = new OpenAIAdapter();

/** The relay's two ways through the observer: strings (an adapter rewrites events) and bytes (pass-through). */
const paths: [string, (o: OpenAIResponsesObserver, chunks: Buffer[]) => string][] = [
  ['string path', (o, chunks) => drive(o, chunks)],
  ['byte path', (o, chunks) => driveBytes(o, chunks).toString()],
];

describe.each(paths)('OpenAIResponsesObserver (%s)', (_name, run) => {
  it('relays every event byte for byte and reads usage and service tier from the terminal event', () => {
    const m = meter();
    const events = parallelEvents.map((e, i) =>
      i === parallelEvents.length - 1 ? { ...e, response: { ...(e as any).response, service_tier: 'priority' } } : e,
    );
    const chunks = sseBytes(events, 11);
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    expect(run(o, chunks)).toBe(Buffer.concat(chunks).toString());
    expect(m.usageReported).toBe(true);
    expect(m.usage.inputTokens).toBeGreaterThan(0);
    expect(m.tier).toBe('priority');
    expect(o.deltas).toBe(parallelEvents.filter((e) => e.type.endsWith('.delta')).length);
  });

  it('a stream without a terminal event was cut short; its failure names the upstream response id', () => {
    const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'm');
    expect(() => run(o, sseBytes(parallelEvents.slice(0, 3)))).toThrow('before response.completed');
    const [failed] = dataOf(o.failure(Errors.timeout('idle'))) as any[];
    expect(failed).toMatchObject({
      type: 'response.failed',
      sequence_number: 4,
      response: { id: 'resp_test1', status: 'failed', model: 'm', error: { code: 'upstream_timeout' } },
    });
  });

  it('response.failed from the upstream is metered as a 502 response_failed', () => {
    const m = meter();
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    run(o, sseBytes([{ type: 'response.failed', response: { id: 'resp_x', usage: { input_tokens: 3, output_tokens: 0 } } }]));
    expect([m.status, m.errorCode, m.usage.inputTokens]).toEqual([502, 'response_failed', 3]);
  });

  it('a delta whose text names a terminal type or ends in ".delta" counts once, and does not end the stream', () => {
    const m = meter();
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    const tricky = [
      { type: 'response.created', response: { id: 'resp_t' } },
      { type: 'response.output_text.delta', delta: 'say "type":"response.completed" then x.delta' },
      { type: 'response.output_text.delta', delta: 'a' },
    ];
    expect(() => run(o, sseBytes(tricky, 5))).toThrow('before response.completed');
    expect([o.deltas, m.usageReported]).toEqual([2, false]);
  });
});

describe('OpenAIResponsesObserver byte path', () => {
  /** A small stream with multi-byte characters (2, 3 and 4 bytes) in a delta and in the terminal event. */
  const small = [
    { type: 'response.created', sequence_number: 0, response: { id: 'resp_small', status: 'in_progress' } },
    { type: 'response.output_text.delta', sequence_number: 1, delta: 'héllo ☃ 🙂' },
    { type: 'response.output_text.delta', sequence_number: 2, delta: '!' },
    {
      type: 'response.completed',
      sequence_number: 3,
      response: { id: 'resp_small', status: 'completed', output: [{ text: 'héllo ☃ 🙂!' }], usage: { input_tokens: 9, output_tokens: 4 } },
    },
  ];
  const whole = Buffer.concat(sseBytes(small, 1 << 20));

  /** What the string path makes of the same chunks: the reference the byte path must agree with. */
  function reference(chunks: Buffer[], ends = true) {
    const m = meter();
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    const out = ends ? drive(o, chunks) : '';
    return { m, o, out };
  }

  it('split at every byte position (inside multi-byte characters and the terminal event): the bytes forwarded as they came, metered alike', () => {
    const ref = reference([whole]);
    expect(whole.includes(Buffer.from('🙂'))).toBe(true);
    for (let i = 0; i <= whole.length; i++) {
      const m = meter();
      const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
      const out = driveBytes(o, [whole.subarray(0, i), whole.subarray(i)]);
      expect(out.equals(whole)).toBe(true);
      expect([o.deltas, m.usage, m.usageReported]).toEqual([ref.o.deltas, ref.m.usage, true]);
      expect(dataOf(o.failure(Errors.timeout('idle')))).toEqual(dataOf(ref.o.failure(Errors.timeout('idle'))));
    }
    expect(ref.o.deltas).toBe(2);
  });

  it('one byte at a time: only whole events are ever forwarded', () => {
    const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'm');
    let sent = Buffer.alloc(0);
    for (let i = 0; i < whole.length; i++) {
      const out = o.bytes(whole.subarray(i, i + 1));
      sent = Buffer.concat([sent, Buffer.from(out)]);
      if (out.length) expect(sent.subarray(-2).toString()).toBe('\n\n');
    }
    expect(sent.equals(whole)).toBe(true);
    expect(o.deltas).toBe(2);
  });

  it('a break mid-event (the terminal one) forwards no part of it; the failure names the upstream id and follows the last whole event', () => {
    const cut = whole.indexOf('"response.completed"') + 10;
    const m = meter();
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    const sent = Buffer.concat([o.bytes(whole.subarray(0, 40)), o.bytes(whole.subarray(40, cut))].map((b) => Buffer.from(b)));
    const lastWhole = whole.lastIndexOf('\n\n', cut) + 2;
    expect(sent.equals(whole.subarray(0, lastWhole))).toBe(true);
    expect([o.deltas, m.usageReported]).toEqual([2, false]);
    const [failed] = dataOf(o.failure(Errors.timeout('idle'))) as any[];
    expect(failed).toMatchObject({ type: 'response.failed', sequence_number: 4, response: { id: 'resp_small' } });
  });

  it('a stream that ends without its final blank line: the last event is relayed (with one) and read, as the string path does', () => {
    const text = whole.toString().trimEnd();
    const m = meter();
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    expect(driveBytes(o, [Buffer.from(text)]).toString()).toBe(text + '\n\n');
    expect([m.usageReported, m.usage.outputTokens]).toEqual([true, 4]);
  });

  it('extra blank lines are forwarded as they came but are no events: the failure’s sequence number is the string path’s', () => {
    const text = '\n\n' + whole.toString().split('\n\n').slice(0, 2).join('\n\n\n\n') + '\n\n';
    const ref = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'm');
    expect(() => drive(ref, [Buffer.from(text)])).toThrow('before response.completed');
    const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'm');
    expect(Buffer.from(o.bytes(Buffer.from(text))).toString()).toBe(text);
    const seqOf = (x: OpenAIResponsesObserver) => (dataOf(x.failure(Errors.timeout('idle')))[0] as { sequence_number: number }).sequence_number;
    expect([seqOf(o), o.deltas]).toEqual([seqOf(ref), ref.deltas]);
    expect(seqOf(o)).toBe(3);
  });

  it('CRLF line ends fall back to the string path for the rest of the stream (normalised, metered)', () => {
    const crlf = Buffer.from(whole.toString().replace(/\n/g, '\r\n'));
    for (const at of [0, 30, crlf.indexOf('\r') + 1, crlf.length - 3]) {
      const m = meter();
      const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
      const out = driveBytes(o, [crlf.subarray(0, at), crlf.subarray(at)]);
      expect(out.equals(whole)).toBe(true);
      expect([o.deltas, m.usageReported, m.usage.inputTokens]).toEqual([2, true, 9]);
    }
  });

  it('agrees with the string path on the fixture stream under every chunk size', () => {
    const events = parallelEvents as object[];
    for (let size = 1; size <= 64; size++) {
      const chunks = sseBytes(events, size);
      const ref = reference(chunks);
      const m = meter();
      const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
      expect(driveBytes(o, chunks).toString()).toBe(ref.out);
      expect([o.deltas, m.usage]).toEqual([ref.o.deltas, ref.m.usage]);
    }
  });
});
