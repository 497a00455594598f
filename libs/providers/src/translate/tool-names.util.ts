import type { NamespacedToolName } from './translate.types';

// Chat Completions has no tool namespaces, so a Responses `namespace` tool member is exposed to the
// provider under one flat name. `__` is the separator Codex already uses for MCP tool names
// (`mcp__server__tool`), so the flat names look familiar to models; a namespace that already ends in
// `_`/`__` is not doubled up.
export function flattenToolName(namespace: string, name: string): string {
  if (namespace.endsWith('__')) return namespace + name;
  if (namespace.endsWith('_')) return namespace + '_' + name;
  return namespace + '__' + name;
}

/** Chat-side tool name -> Responses (name, namespace?) using the map built by the request mapper. */
export function splitToolName(
  chatName: string,
  namespaced: ReadonlyMap<string, NamespacedToolName> | undefined,
): NamespacedToolName | { namespace: undefined; name: string } {
  const hit = namespaced?.get(chatName);
  return hit ?? { namespace: undefined, name: chatName };
}
