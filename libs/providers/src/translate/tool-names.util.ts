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

/** What chat APIs accept as a function name (OpenAI's rule; OpenRouter and Ollama's templates follow it). */
const VALID_CHAT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_CHAT_NAME = 64;

/** FNV-1a, 32 bits, base 36: a short stable suffix that keeps shortened names apart. */
function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/**
 * One request's tool names, both ways: every Responses tool (namespace member or not) gets one chat name
 * that chat APIs accept (≤ 64 chars of `[A-Za-z0-9_-]`), and every chat name maps back to exactly the
 * original (namespace, name). A valid, free name is kept as it is; otherwise bad characters become `_`, a
 * long name is cut and given a hash suffix, and a name already taken gets a counter: so two tools never
 * share a chat name, and history items find the same name their tool got.
 */
export class ToolNameMap {
  private readonly toChat = new Map<string, string>();
  /** Chat name → original, only for names that differ from a plain (namespace-less) tool's own name. */
  readonly renamed = new Map<string, NamespacedToolName>();
  private readonly taken = new Set<string>();

  /** The chat name of (namespace, name), allocated on first use. */
  chatName(namespace: string | undefined, name: string): string {
    const key = namespace ? `${namespace}\u0000${name}` : name;
    const known = this.toChat.get(key);
    if (known !== undefined) return known;
    const flat = namespace ? flattenToolName(namespace, name) : name;
    let chat = VALID_CHAT_NAME.test(flat) && !this.taken.has(flat) ? flat : this.fit(flat);
    for (let i = 2; this.taken.has(chat); i++) chat = this.fit(`${flat}_${i}`, true);
    this.toChat.set(key, chat);
    this.taken.add(chat);
    if (namespace || chat !== name) this.renamed.set(chat, namespace ? { namespace, name } : { name });
    return chat;
  }

  /** Whether a chat name was handed out (a tool the model may call). */
  has(chatName: string): boolean {
    return this.taken.has(chatName);
  }

  private fit(flat: string, forceHash = false): string {
    const clean = flat.replace(/[^A-Za-z0-9_-]/g, '_') || 'tool';
    if (!forceHash && clean.length <= MAX_CHAT_NAME && clean === flat) return clean;
    if (!forceHash && clean.length <= MAX_CHAT_NAME && !this.taken.has(clean)) return clean;
    const suffix = '_' + shortHash(flat);
    return clean.slice(0, MAX_CHAT_NAME - suffix.length) + suffix;
  }
}

/** Chat-side tool name -> Responses (name, namespace?) using the map built by the request mapper. */
export function splitToolName(chatName: string, namespaced: ReadonlyMap<string, NamespacedToolName> | undefined): NamespacedToolName {
  const hit = namespaced?.get(chatName);
  return hit ?? { namespace: undefined, name: chatName };
}
