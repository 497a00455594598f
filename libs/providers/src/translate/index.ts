// Pure Responses API <-> Chat Completions translation (no HTTP, no Nest).
export * from './translate.types';
export { responsesRequestToChat, customToolInputDescription, type ResponsesToChatOptions, type ResponsesToChatResult } from './responses-to-chat.mapper';
export {
  chatCompletionToResponse,
  extractCustomToolInput,
  incompleteReasonFor,
  type ChatToResponsesContext,
  type IncompleteReason,
} from './chat-to-responses.mapper';
export { ChatToResponsesStream } from './chat-to-responses.stream';
export { sseFrame } from './sse.util';
export { chatUsageToNormalised, responsesUsageToNormalised, normalisedToResponsesUsage } from './usage.mapper';
export { flattenToolName, splitToolName } from './tool-names.util';
