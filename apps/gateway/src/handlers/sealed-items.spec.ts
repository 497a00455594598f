import type { ResolvedProvider } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import { movedAccount, recogniseGatewayCompaction, withoutSealedItems } from './sealed-items';

const t = (id: string, model = 'm'): ResolvedTarget => ({ provider: { id } as ResolvedProvider, model, weight: 1 });

describe('sealed items of a moved session', () => {
  const history = [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] },
    { type: 'reasoning', summary: [], encrypted_content: 'gAAAA-home-account' },
    { type: 'function_call', call_id: 'c1', name: 'exec_command', arguments: '{}' },
    { type: 'function_call_output', call_id: 'c1', output: 'ok' },
    { type: 'reasoning', summary: [{ type: 'summary_text', text: 'plain' }] },
    { type: 'compaction', encrypted_content: 'provider-made' },
    { type: 'compaction_summary', encrypted_content: 'older name' },
    { type: 'context_compaction', encrypted_content: 'newer kind' },
    { type: 'context_compaction' },
  ];

  it('drops encrypted reasoning and provider compaction items, keeps everything else in order, copies only then', () => {
    const body = { model: 'm', input: history, store: false };
    const { body: out, dropped } = withoutSealedItems(body);
    expect(dropped).toBe(4);
    expect((out.input as { type: string }[]).map((i) => i.type)).toEqual([
      'message',
      'function_call',
      'function_call_output',
      'reasoning',
      'context_compaction',
    ]);
    expect(out).toMatchObject({ model: 'm', store: false });
    expect(body.input).toHaveLength(9); // the client's body is not modified
    const clean = { input: history.slice(2, 4) };
    expect(withoutSealedItems(clean).body).toBe(clean);
    expect(withoutSealedItems({ input: 'a string' })).toEqual({ body: { input: 'a string' }, dropped: 0 });
  });

  it('leaves the gateway’s own compaction items alone once their maker says how to recognise them', () => {
    recogniseGatewayCompaction((it) => it.encrypted_content === 'provider-made');
    try {
      expect(withoutSealedItems({ input: history }).dropped).toBe(3);
    } finally {
      recogniseGatewayCompaction(() => false);
    }
  });

  it('moved means another provider account than home (another model of the same account is not a move)', () => {
    expect(movedAccount(undefined, t('a'))).toBe(false);
    expect(movedAccount(t('a'), t('a', 'other-model'))).toBe(false);
    expect(movedAccount(t('a'), t('b'))).toBe(true);
  });
});
