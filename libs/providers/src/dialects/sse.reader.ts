import { StringDecoder } from 'node:string_decoder';

/**
 * Splits an SSE byte stream into complete events (the text between blank lines), tolerating
 * events split across chunks and multi-byte characters split across chunks.
 */
export class SseReader {
  private readonly decoder = new StringDecoder('utf8');
  private buf = '';

  push(chunk: Buffer): string[] {
    this.buf += this.decoder.write(chunk);
    if (!this.buf.includes('\n\n') && !this.buf.includes('\r\n\r\n')) return [];
    const text = this.buf.replace(/\r\n/g, '\n');
    const parts = text.split('\n\n');
    this.buf = parts.pop() ?? '';
    return parts.filter((p) => p.length > 0);
  }

  /** What is left when the stream ended without a final blank line. */
  end(): string[] {
    const rest = (this.buf + this.decoder.end()).trim();
    this.buf = '';
    return rest ? [rest] : [];
  }
}

/** The JSON after `data:` in an event (joined if on several lines), or undefined. */
export function sseData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split('\n')) {
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === undefined ? v : data + '\n' + v;
    }
  }
  return data;
}
