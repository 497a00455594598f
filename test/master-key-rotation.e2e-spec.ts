import type { INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { SecretBox } from '@gw/common';
import { APP_CONFIG, AppConfig, decodeKey } from '@gw/config';
import { parseRotateArgs, rotateMasterKey } from '@gw/providers';
import { FakeProvider, Stack, startStack } from '@gw/testing';
import { createGatewayApp } from '../apps/gateway/src/main';

jest.setTimeout(60_000);

const CREDENTIAL = 'sk-upstream-rotation-plaintext';

/**
 * Seal with key A (the generated `${DATA_DIR}/master.key`), rotate to B, and a gateway started with B
 * decrypts and calls the provider; then rotate again with the key in MASTER_KEY. The raw table never
 * holds the plaintext.
 */
describe('master key rotation', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let cfg: Partial<AppConfig> & { dataDir: string };
  let secret: string;
  const extra: INestApplication[] = [];

  async function chatThrough(overrides: Partial<AppConfig>): Promise<string | null> {
    const gw = await createGatewayApp({ ...cfg, ...overrides });
    extra.push(gw);
    await gw.listen(0, '127.0.0.1');
    const url = (await gw.getUrl()).replace('[::1]', '127.0.0.1');
    const client = new OpenAI({ apiKey: secret, baseURL: `${url}/v1`, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    return r.choices[0].message.content;
  }
  const sealed = async () => (await stack.sql(`SELECT credential_enc FROM providers WHERE name = 'openai'`))[0].credential_enc as string;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', apiKey: CREDENTIAL });
    // no MASTER_KEY: the key is generated into DATA_DIR, as on a laptop
    stack = await startStack({ masterKey: undefined });
    const p = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl, credential: CREDENTIAL });
    await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId: p.body.id }] });
    const t = await stack.api('POST', '/admin/tenants', { name: 'rot' });
    secret = (await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k' })).body.secret;
    const stackCfg = stack.gateway.get<symbol, AppConfig>(APP_CONFIG, { strict: false });
    cfg = { ...stackCfg, host: '127.0.0.1', masterKey: undefined };
  });

  afterAll(async () => {
    for (const app of extra) await app.close().catch(() => undefined);
    await stack?.close();
    await fake?.close();
  });

  it('file key: re-seals every credential, replaces the key file, and a gateway with the new key works', async () => {
    const file = join(cfg.dataDir, 'master.key');
    const keyA = new SecretBox(decodeKey(readFileSync(file, 'utf8').trim())!);
    const before = await sealed();
    expect(before.split(':')[1]).toBe(keyA.keyId);
    expect(keyA.open(before)).toBe(CREDENTIAL);

    const keyB = randomBytes(32).toString('base64');
    const boxB = new SecretBox(Buffer.from(keyB, 'base64'));
    const lines: string[] = [];
    const r = await rotateMasterKey({ cfg: cfg as AppConfig, newKey: keyB, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ fromKeyId: keyA.keyId, toKeyId: boxB.keyId, resealed: 1, alreadyNew: 0, keyFile: file });
    expect(lines.join('\n')).toContain(`to ${boxB.keyId}`);

    const after = await sealed();
    expect(after.split(':')[1]).toBe(boxB.keyId);
    expect(boxB.open(after)).toBe(CREDENTIAL);
    expect(() => keyA.open(after)).toThrow();
    expect(readFileSync(file, 'utf8').trim()).toBe(keyB);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(existsSync(`${file}.new`)).toBe(false);
    expect(JSON.stringify(await stack.sql('SELECT * FROM providers'))).not.toContain(CREDENTIAL);
    const [audit] = await stack.sql(`SELECT * FROM audit_log WHERE action = 'master_key.rotate'`);
    expect(audit).toMatchObject({ actor_role: 'system', object_id: boxB.keyId, before: { keyId: keyA.keyId } });

    // a fresh gateway reads the new key from the file and calls the provider with the real credential
    expect(await chatThrough({})).toBe('Hello from fake-openai (gpt-4o-mini)');
    expect(fake.requestsTo('/chat/completions').at(-1)!.headers.authorization).toBe(`Bearer ${CREDENTIAL}`);
  });

  it('MASTER_KEY: rotates to a third key; the wrong current key changes nothing', async () => {
    const keyB = readFileSync(join(cfg.dataDir, 'master.key'), 'utf8').trim();
    const keyC = randomBytes(32).toString('hex');
    const boxC = new SecretBox(Buffer.from(keyC, 'hex'));

    const wrong = randomBytes(32).toString('base64');
    const untouched = await sealed();
    await expect(rotateMasterKey({ cfg: { ...cfg, masterKey: wrong } as AppConfig, newKey: keyC })).rejects.toThrow(/provider "openai".*nothing was changed/);
    expect(await sealed()).toBe(untouched);
    await expect(rotateMasterKey({ cfg: { ...cfg, masterKey: keyB } as AppConfig, newKey: keyB })).rejects.toThrow(/is the current key/);
    await expect(rotateMasterKey({ cfg: { ...cfg, masterKey: keyB } as AppConfig, newKey: 'too-short' })).rejects.toThrow(/32 bytes/);

    const r = await rotateMasterKey({ cfg: { ...cfg, masterKey: keyB } as AppConfig, newKey: keyC });
    expect(r).toMatchObject({ toKeyId: boxC.keyId, resealed: 1, keyFile: undefined });
    expect(readFileSync(join(cfg.dataDir, 'master.key'), 'utf8').trim()).toBe(keyB);
    expect(boxC.open(await sealed())).toBe(CREDENTIAL);
    expect(await chatThrough({ masterKey: keyC })).toBe('Hello from fake-openai (gpt-4o-mini)');
  });

  it('parses the command line', () => {
    expect(parseRotateArgs(['--new', 'abc'], {})).toMatchObject({ newKey: 'abc', generated: false });
    expect(parseRotateArgs(['--new=xyz'], {})).toMatchObject({ newKey: 'xyz' });
    expect(parseRotateArgs([], { NEW_MASTER_KEY: 'env' })).toMatchObject({ newKey: 'env' });
    const g = parseRotateArgs(['--generate'], {});
    expect(decodeKey(g.newKey!)?.length).toBe(32);
    expect(g.generated).toBe(true);
    expect(() => parseRotateArgs(['--nwe', 'x'], {})).toThrow(/unknown argument/);
  });
});
