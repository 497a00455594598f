import type { Provider } from '@nestjs/common';
import { ChatHandler } from '../handlers/chat.handler';
import { EmbeddingsHandler } from '../handlers/embeddings.handler';
import { ResponsesCompactHandler } from '../handlers/responses-compact.handler';
import { ResponsesHandler } from '../handlers/responses.handler';
import { ResponsesSocketServer } from '../handlers/responses-socket.server';
import { AdmitStep } from './admit.step';
import { AuthenticateStep } from './authenticate.step';
import { DispatchStep } from './dispatch.step';
import { DataPlanePipeline } from './pipeline';
import { RelayStep } from './relay.step';
import { ResolveStep } from './resolve.step';
import { SettleStep } from './settle.step';

/** The data plane's steps and endpoint handlers (a new endpoint's handler is added here and to a controller). */
export const PIPELINE_PROVIDERS: Provider[] = [
  AuthenticateStep,
  ResolveStep,
  AdmitStep,
  DispatchStep,
  RelayStep,
  SettleStep,
  DataPlanePipeline,
  ChatHandler,
  EmbeddingsHandler,
  ResponsesHandler,
  ResponsesCompactHandler,
  ResponsesSocketServer,
];
