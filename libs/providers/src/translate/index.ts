// Pure Responses API <-> Chat Completions translation (no HTTP, no Nest).
export * from './translate.types';
export {
  responsesRequestToChat,
  customToolInputDescription,
  droppedToolLabel,
  type ResponsesToChatOptions,
  type ResponsesToChatResult,
} from './responses-to-chat.mapper';
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
export { ToolNameMap } from './tool-names.util';
export { fitChatRequest, type ChatProfile, type FittedChatRequest } from './chat-profile';
export {
  GATEWAY_REASONING_PREFIX,
  decodeReasoningDetails,
  encodeReasoningDetails,
  isGatewayReasoning,
  mergeReasoningDetails,
  withoutGatewayReasoning,
} from './reasoning-details.util';
