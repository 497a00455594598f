import { isObject } from '@gw/common';
import type { ResolvedProvider } from '../provider.adapter';
import { sseData } from './sse.reader';
import type { StreamMeter } from './sse.observer';
import { ResponsesFromChatTranslator } from './responses-from-chat.translator';

/**
 * Hands each chat chunk of a batch of SSE events to `each`, for the observers that read every chunk (the
 * Responses translation, the gateway's compaction): comments skipped, usage metered, an upstream `error` chunk
 * thrown as a 502 `upstream_error`. Returns whether the batch held `[DONE]`.
 */
export function eachChatChunk(events: string[], provider: ResolvedProvider, meter: StreamMeter, each: (chunk: Record<string, unknown>) => void): boolean {
  let done = false;
  for (const ev of events) {
    const data = sseData(ev);
    if (data === undefined) continue; // comments such as OpenRouter's ": OPENROUTER PROCESSING"
    if (data.trim() === '[DONE]') {
      done = true;
      continue;
    }
    const chunk = JSON.parse(data) as unknown;
    if (!isObject(chunk)) continue;
    const error = ResponsesFromChatTranslator.chunkError(chunk, provider);
    if (error) throw error;
    if (isObject(chunk.usage)) {
      meter.usage = provider.adapter.usage('chat', chunk.usage);
      meter.usageReported = true;
      meter.noteServiceTier(chunk.service_tier);
    }
    each(chunk);
  }
  return done;
}
