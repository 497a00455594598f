// Wire formats (dialects): what the gateway's one SSE relay and one JSON relay need to know about each.
export * from './sse.reader';
export * from './sse-bytes.reader';
export * from './sse.observer';
export * from './scrub-secrets.util';
export * from './openai-chat.observer';
export * from './openai-responses.observer';
export * from './responses-from-chat.translator';
export * from './responses-from-chat.observer';
export * from './chat-chunks.reader';
