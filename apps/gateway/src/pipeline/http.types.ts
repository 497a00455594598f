import type { IncomingMessage, ServerResponse } from 'node:http';

/** A data-plane request as node hands it over, with the JSON body the edge read onto it (undefined when unread). */
export type DataPlaneRequest = IncomingMessage & { body?: unknown };
export type DataPlaneResponse = ServerResponse;
