/**
 * Small helpers for tests that talk to FakeProvider (or to the gateway in front of it) with raw
 * HTTP rather than the OpenAI SDK, so they can assert on the exact SSE framing.
 */

export interface SseEvent {
  /** Value of the `event:` line, if any (Responses API streams use it; chat streams don't). */
  event?: string;
  /** Concatenated `data:` lines. */
  data: string;
}

/** Parses a complete SSE payload. Comment lines (`: ...`) are dropped, as the spec requires. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const idx = line.indexOf(':');
      const field = idx === -1 ? line : line.slice(0, idx);
      const value = idx === -1 ? '' : line.slice(idx + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0 || event !== undefined) events.push({ event, data: data.join('\n') });
  }
  return events;
}

/** JSON payloads of an SSE stream, without the `[DONE]` sentinel. */
export function sseJson(text: string): any[] {
  return parseSse(text)
    .filter((e) => e.data !== '[DONE]')
    .map((e) => JSON.parse(e.data));
}

/** Polls until `predicate` is truthy; rejects with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what = 'condition', timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
