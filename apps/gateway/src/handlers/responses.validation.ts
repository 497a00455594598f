import { Errors, isObject } from '@gw/common';

type Body = Record<string, unknown>;

function bad(param: string, message: string): never {
  throw Errors.badRequest(`\`${param}\` ${message}`, param);
}

/** An array whose elements must all be objects: a part list of a message or a tool output. */
function objectArray(v: unknown[], param: string): void {
  for (let j = 0; j < v.length; j++) if (!isObject(v[j])) bad(`${param}[${j}]`, 'must be an object.');
}

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

function inputItem(item: unknown, param: string): void {
  if (!isObject(item)) bad(param, 'must be an object (an input item).');
  const type = item.type;
  if (type !== undefined && typeof type !== 'string') bad(`${param}.type`, 'must be a string.');
  if (type === undefined || type === 'message') {
    if (typeof item.role !== 'string' || !MESSAGE_ROLES.has(item.role)) {
      bad(`${param}.role`, "must be one of 'user', 'assistant', 'system' or 'developer'.");
    }
    const content = item.content;
    if (Array.isArray(content)) objectArray(content, `${param}.content`);
    else if (typeof content !== 'string' && content !== null) bad(`${param}.content`, 'must be a string or an array of content parts.');
    return;
  }
  switch (type) {
    case 'reasoning':
      if (item.summary !== undefined && item.summary !== null) {
        if (!Array.isArray(item.summary)) bad(`${param}.summary`, 'must be an array.');
        objectArray(item.summary, `${param}.summary`);
      }
      if (item.content !== undefined && item.content !== null) {
        if (!Array.isArray(item.content)) bad(`${param}.content`, 'must be an array.');
        objectArray(item.content, `${param}.content`);
      }
      return;
    case 'function_call':
    case 'custom_tool_call':
      if (typeof item.call_id !== 'string') bad(`${param}.call_id`, 'must be a string.');
      if (typeof item.name !== 'string') bad(`${param}.name`, 'must be a string.');
      return;
    case 'function_call_output':
    case 'custom_tool_call_output':
      if (typeof item.call_id !== 'string') bad(`${param}.call_id`, 'must be a string.');
      if (Array.isArray(item.output)) objectArray(item.output, `${param}.output`);
      return;
    default:
      // Other item types (web_search_call, compaction, item_reference, …) are the upstream's business.
      return;
  }
}

function tool(t: unknown, param: string): void {
  if (!isObject(t)) bad(param, 'must be an object (a tool).');
  if (typeof t.type !== 'string' || !t.type) bad(`${param}.type`, 'must be a string.');
  if ((t.type === 'function' || t.type === 'custom' || t.type === 'namespace') && (typeof t.name !== 'string' || !t.name)) {
    bad(`${param}.name`, 'must be a non-empty string.');
  }
  if (t.type === 'namespace') {
    if (!Array.isArray(t.tools)) bad(`${param}.tools`, 'must be an array.');
    for (let j = 0; j < t.tools.length; j++) {
      const member: unknown = t.tools[j];
      if (!isObject(member)) bad(`${param}.tools[${j}]`, 'must be an object (a tool).');
      if (typeof member.type !== 'string' || !member.type) bad(`${param}.tools[${j}].type`, 'must be a string.');
      if (typeof member.name !== 'string' || !member.name) bad(`${param}.tools[${j}].name`, 'must be a non-empty string.');
    }
  }
}

/**
 * The shape checks of `POST /v1/responses` that the gateway relies on, whichever provider serves it: the
 * same malformed request gets the same 400 (with `param` pointing into it, e.g. `input[3].content`) from a
 * native provider and a translated one, before anything is reserved or forwarded.
 */
export function validateResponsesRequest(body: Body): void {
  const input = body.input;
  if (typeof input !== 'string' && !Array.isArray(input)) bad('input', 'must be a string or an array of input items.');
  if (Array.isArray(input)) for (let i = 0; i < input.length; i++) inputItem(input[i], `input[${i}]`);
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) bad('tools', 'must be an array.');
    for (let i = 0; i < body.tools.length; i++) tool(body.tools[i], `tools[${i}]`);
  }
  if (body.instructions !== undefined && body.instructions !== null && typeof body.instructions !== 'string') bad('instructions', 'must be a string.');
  const prev = body.previous_response_id;
  if (prev !== undefined && prev !== null && typeof prev !== 'string') bad('previous_response_id', 'must be a string.');
  const choice = body.tool_choice;
  if (choice !== undefined && choice !== null && typeof choice !== 'string' && !isObject(choice)) bad('tool_choice', 'must be a string or an object.');
  // A background response answers at once (`queued`, no usage) and runs on after the request ended, past
  // its reservation and its ledger row: the gateway could neither bound nor meter it.
  if (body.background === true) {
    throw Errors.badRequest(
      '`background` responses are not supported through this gateway (they cannot be metered); send the request without it.',
      'background',
      'unsupported_parameter',
    );
  }
}
