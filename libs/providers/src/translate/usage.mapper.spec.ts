import { chatUsageToNormalised, normalisedToResponsesUsage, responsesUsageToNormalised } from './usage.mapper';

describe('usage normalisation', () => {
  it('maps chat usage with details and OpenRouter cost', () => {
    expect(
      chatUsageToNormalised({
        prompt_tokens: 5000,
        completion_tokens: 700,
        total_tokens: 5700,
        prompt_tokens_details: { cached_tokens: 4096 },
        completion_tokens_details: { reasoning_tokens: 300 },
        cost: 0.01742,
        is_byok: false,
      }),
    ).toEqual({ inputTokens: 5000, outputTokens: 700, cachedTokens: 4096, reasoningTokens: 300, costUsd: 0.01742 });
  });

  it('defaults missing details to 0 and leaves costUsd out when the provider reports none (Ollama)', () => {
    const u = chatUsageToNormalised({ prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 });
    expect(u).toEqual({ inputTokens: 12, outputTokens: 3, cachedTokens: 0, reasoningTokens: 0 });
    expect(u).not.toHaveProperty('costUsd');
  });

  it('survives null / garbage without producing NaN', () => {
    expect(chatUsageToNormalised(null)).toEqual({ inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0 });
    expect(chatUsageToNormalised({ prompt_tokens: '7', completion_tokens: NaN, prompt_tokens_details: null, cost: 'free' })).toEqual({
      inputTokens: 0,
      outputTokens: 0,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
  });

  it('maps Responses usage', () => {
    expect(
      responsesUsageToNormalised({
        input_tokens: 1100,
        input_tokens_details: { cached_tokens: 1000 },
        output_tokens: 12,
        output_tokens_details: { reasoning_tokens: 5 },
        total_tokens: 1112,
      }),
    ).toEqual({ inputTokens: 1100, outputTokens: 12, cachedTokens: 1000, reasoningTokens: 5 });
  });

  it('reads cache writes where the provider reports them (billed at their own rate)', () => {
    expect(
      responsesUsageToNormalised({ input_tokens: 100, input_tokens_details: { cached_tokens: 50, cache_write_tokens: 30 }, output_tokens: 1 }),
    ).toMatchObject({
      cachedTokens: 50,
      cacheWriteTokens: 30,
    });
    expect(chatUsageToNormalised({ prompt_tokens: 100, prompt_tokens_details: { cache_write_tokens: 7 }, completion_tokens: 1 })).toMatchObject({
      cacheWriteTokens: 7,
    });
  });

  it('round-trips into the Responses usage block without exposing cost', () => {
    const block = normalisedToResponsesUsage({ inputTokens: 10, outputTokens: 4, cachedTokens: 2, reasoningTokens: 1, costUsd: 0.5 });
    expect(block).toEqual({
      input_tokens: 10,
      input_tokens_details: { cached_tokens: 2 },
      output_tokens: 4,
      output_tokens_details: { reasoning_tokens: 1 },
      total_tokens: 14,
    });
    expect(responsesUsageToNormalised(block)).toEqual({ inputTokens: 10, outputTokens: 4, cachedTokens: 2, reasoningTokens: 1 });
  });

  it('sanitizes every number: non-negative integers capped at int32, cost finite, >= 0 and < 1e9', () => {
    expect(
      chatUsageToNormalised({
        prompt_tokens: 3e9,
        completion_tokens: -5,
        prompt_tokens_details: { cached_tokens: 1.6 },
        completion_tokens_details: { reasoning_tokens: Infinity },
        cost: -2,
      }),
    ).toEqual({
      inputTokens: 2_147_483_647,
      outputTokens: 0,
      cachedTokens: 2,
      reasoningTokens: 0,
    });
    expect(chatUsageToNormalised({ prompt_tokens: 1, cost: 1e12 })).not.toHaveProperty('costUsd');
    expect(chatUsageToNormalised({ prompt_tokens: 1, cost: 0 }).costUsd).toBe(0);
    expect(responsesUsageToNormalised({ input_tokens: 1e300, output_tokens: 2.4, cost: -0.5 })).toEqual({
      inputTokens: 2_147_483_647,
      outputTokens: 2,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
  });
});
