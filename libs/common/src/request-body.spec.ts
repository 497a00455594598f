import type { Request } from 'express';
import { bodyBytesOf, recordBodyBytes, unsupportedContentEncoding, unsupportedEncodingError } from './request-body';

const req = (headers: Record<string, string> = {}) => ({ headers }) as unknown as Request;

describe('request body helpers', () => {
  it('records the inflated size, counting invalid UTF-8 at 3 bytes per byte (forwarded as U+FFFD)', () => {
    const r = req();
    expect(bodyBytesOf(r)).toBeUndefined();
    recordBodyBytes(r, undefined, Buffer.from('{"a":"héllo"}'));
    expect(bodyBytesOf(r)).toBe(14);
    recordBodyBytes(r, undefined, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(bodyBytesOf(r)).toBe(12);
  });

  it('accepts identity, gzip, deflate and br (any case, spaced, or empty); names anything else', () => {
    for (const e of [undefined, '', 'identity', 'gzip', ' GZip ', 'deflate', 'br']) {
      expect(unsupportedContentEncoding(req(e === undefined ? {} : { 'content-encoding': e }))).toBeUndefined();
    }
    expect(unsupportedContentEncoding(req({ 'content-encoding': 'compress' }))).toBe('compress');
    expect(unsupportedContentEncoding(req({ 'content-encoding': 'gzip, br' }))).toBe('gzip, br');
    const e = unsupportedEncodingError('zstd');
    expect(e.getStatus()).toBe(415);
    expect(e.body.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_media_type', param: null });
  });
});
