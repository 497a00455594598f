import { capChatOutput, capResponsesOutput } from './output-cap';

describe('output caps written for a clamped admission', () => {
  it("lowers the client's own chat fields, never raises them", () => {
    const a: Record<string, unknown> = { max_tokens: 5000 };
    capChatOutput(a, 1000, 'openai');
    expect(a).toEqual({ max_tokens: 1000 });
    const b: Record<string, unknown> = { max_completion_tokens: 5000, max_tokens: 300 };
    capChatOutput(b, 1000, 'ollama');
    expect(b).toEqual({ max_completion_tokens: 1000, max_tokens: 300 });
  });

  it('adds the field the provider reads when the client named none', () => {
    const o: Record<string, unknown> = { max_tokens: null };
    capChatOutput(o, 700, 'openai');
    expect(o.max_completion_tokens).toBe(700);
    const l: Record<string, unknown> = {};
    capChatOutput(l, 700, 'openrouter');
    expect(l).toEqual({ max_tokens: 700 });
  });

  it('caps max_output_tokens for the Responses API', () => {
    const r: Record<string, unknown> = {};
    capResponsesOutput(r, 900);
    expect(r.max_output_tokens).toBe(900);
    const s: Record<string, unknown> = { max_output_tokens: 100 };
    capResponsesOutput(s, 900);
    expect(s.max_output_tokens).toBe(100);
  });
});
