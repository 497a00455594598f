/** One Server-Sent Events frame: `event: X\ndata: {json}\n\n` (JSON is single-line, so one data line suffices). */
export function sseFrame(event: string, data: object): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
