// A minimal MCP server on stdio (newline-delimited JSON-RPC) for Codex e2e runs: one tool, `lookup_fact`,
// that Codex hides behind `tool_search` for its bundled models. Plain JS so that Codex can spawn it with `node`.
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (line) => {
  let m;
  try {
    m = JSON.parse(line);
  } catch {
    return;
  }
  if (m.id === undefined) return; // notifications need no answer
  const result = (r) => send({ jsonrpc: '2.0', id: m.id, result: r });
  if (m.method === 'initialize') {
    return result({
      protocolVersion: (m.params && m.params.protocolVersion) || '2025-06-18',
      capabilities: { tools: {} },
      serverInfo: { name: 'facts', version: '1.0.0' },
    });
  }
  if (m.method === 'tools/list') {
    return result({
      tools: [
        {
          name: 'lookup_fact',
          description: 'Looks up a fact by key.',
          inputSchema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
        },
      ],
    });
  }
  if (m.method === 'tools/call') {
    const key = m.params && m.params.arguments ? m.params.arguments.key : undefined;
    return result({ content: [{ type: 'text', text: `fact(${key})=forty-two` }] });
  }
  send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `no such method: ${m.method}` } });
});
