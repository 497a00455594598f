import { Errors } from '@gw/common';
import parallelEvents from '../translate/__fixtures__/parallel-tools.events.json';
import { OpenAIAdapter } from '../providers/openai/openai.adapter';
import { OpenAIResponsesObserver } from './openai-responses.observer';
import { dataOf, drive, meter, sseBytes } from './dialects.spec-helpers';

const adapter = new OpenAIAdapter();

describe('OpenAIResponsesObserver', () => {
  it('relays every event byte for byte and reads usage and service tier from the terminal event', () => {
    const m = meter();
    const events = parallelEvents.map((e, i) =>
      i === parallelEvents.length - 1 ? { ...e, response: { ...(e as any).response, service_tier: 'priority' } } : e,
    );
    const chunks = sseBytes(events, 11);
    const o = new OpenAIResponsesObserver(m, adapter, 'resp_ours', 'm');
    expect(drive(o, chunks)).toBe(Buffer.concat(chunks).toString());
    expect(m.usageReported).toBe(true);
    expect(m.usage.inputTokens).toBeGreaterThan(0);
    expect(m.tier).toBe('priority');
    expect(o.deltas).toBe(parallelEvents.filter((e) => e.type.endsWith('.delta')).length);
  });

  it('a stream without a terminal event was cut short; its failure names the upstream response id', () => {
    const o = new OpenAIResponsesObserver(meter(), adapter, 'resp_ours', 'm');
    expect(() => drive(o, sseBytes(parallelEvents.slice(0, 3)))).toThrow('before response.completed');
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
    drive(o, sseBytes([{ type: 'response.failed', response: { id: 'resp_x', usage: { input_tokens: 3, output_tokens: 0 } } }]));
    expect([m.status, m.errorCode, m.usage.inputTokens]).toEqual([502, 'response_failed', 3]);
  });
});
