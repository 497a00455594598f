import { chmodSync, closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';

/**
 * A small streaming reader of ustar archives, for the PGlite template (pglite-template.ts): it writes each file as
 * its bytes arrive, so unpacking ~38 MB costs a 512-byte header buffer and the stream's chunks, not the archive.
 * Only what the template's generator (PGlite's dumpDataDir, tinytar) writes is accepted: regular files and
 * directories with names of up to 100 bytes. Anything else (links, long-name records, the ustar prefix field,
 * a path leaving the destination, a truncated archive) is refused with a TarError rather than guessed at.
 */
export class TarError extends Error {}

export interface TarHeader {
  /** As stored, before the leading `/` is stripped. */
  name: string;
  mode: number;
  size: number;
  type: 'file' | 'directory';
}

export interface TarStats {
  files: number;
  directories: number;
  bytes: number;
}

const BLOCK = 512;

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.toString('utf8', 0, nul === -1 ? length : nul);
}

function octal(block: Buffer, start: number, length: number, what: string): number {
  // GNU's base-256 form (high bit set) only appears for sizes over 8 GB or odd ids: not in a data directory.
  if (block[start] & 0x80) throw new TarError(`${what} in base-256 form is not supported`);
  const text = field(block, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarError(`${what} is not an octal number: ${JSON.stringify(text)}`);
  return text ? parseInt(text, 8) : 0;
}

/** The header in one 512-byte block; undefined for an all-zero block (the end-of-archive marker). */
export function parseTarHeader(block: Buffer): TarHeader | undefined {
  if (block.length !== BLOCK) throw new TarError(`a header is ${BLOCK} bytes, got ${block.length}`);
  if (block.every((b) => b === 0)) return undefined;
  // The checksum is the byte sum of the header with its own field counted as spaces: a shifted or corrupt block.
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  const stored = octal(block, 148, 8, 'checksum');
  if (stored !== sum) throw new TarError(`header checksum mismatch (stored ${stored}, computed ${sum}): not a tar archive, or a corrupt one`);
  if (block.toString('latin1', 257, 262) !== 'ustar') throw new TarError('not a ustar header (no "ustar" magic)');
  const name = field(block, 0, 100);
  const flag = String.fromCharCode(block[156]);
  if (flag === 'x' || flag === 'g') throw new TarError(`${name}: pax extended headers are not supported`);
  if (flag === 'L' || flag === 'K') throw new TarError('GNU long-name records are not supported');
  // The prefix field is POSIX ustar's ("ustar\0"); GNU's format ("ustar  ") keeps other data there.
  if (block[262] === 0 && field(block, 345, 155)) throw new TarError(`${name}: names in the ustar prefix field are not supported`);
  let type: TarHeader['type'];
  if (flag === '0' || flag === '\0') type = 'file';
  else if (flag === '5') type = 'directory';
  else throw new TarError(`${name}: entry type ${JSON.stringify(flag)} is not supported (only files and directories)`);
  return { name, mode: octal(block, 100, 8, 'mode') & 0o777, size: octal(block, 124, 12, 'size'), type };
}

/** Where `name` lands under `dest`: the leading `/` stripped; `..` or an empty name refused. */
export function entryPath(dest: string, name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new TarError(`${name}: a path with ".." is refused`);
  const root = resolve(dest);
  const path = join(root, ...parts);
  if (path === root) return root;
  if (!path.startsWith(root + sep)) throw new TarError(`${name}: leaves the destination`);
  return path;
}

function writeAll(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off);
}

/**
 * Unpacks a tar stream into `dest` (which should be new and empty: files are created with `wx`, so an entry twice
 * is refused). Throws a TarError if the stream ends before the end-of-archive marker.
 */
export async function extractTar(source: AsyncIterable<Buffer>, dest: string): Promise<TarStats> {
  const stats: TarStats = { files: 0, directories: 0, bytes: 0 };
  let header = Buffer.alloc(0);
  // The file being written: bytes still to come, then the padding to the next block.
  let open: { fd: number; name: string; left: number; pad: number } | undefined;
  let ended = false;
  try {
    for await (const data of source) {
      let chunk = data;
      while (chunk.length > 0) {
        if (ended) {
          if (!chunk.every((b) => b === 0)) throw new TarError('data after the end-of-archive marker');
          break;
        }
        if (open) {
          if (open.left > 0) {
            const n = Math.min(open.left, chunk.length);
            writeAll(open.fd, chunk.subarray(0, n));
            open.left -= n;
            stats.bytes += n;
            chunk = chunk.subarray(n);
          } else {
            const n = Math.min(open.pad, chunk.length);
            open.pad -= n;
            chunk = chunk.subarray(n);
          }
          if (open.left === 0 && open.pad === 0) {
            closeSync(open.fd);
            open = undefined;
          }
          continue;
        }
        const take = chunk.subarray(0, BLOCK - header.length);
        header = header.length ? Buffer.concat([header, take]) : Buffer.from(take);
        chunk = chunk.subarray(take.length);
        if (header.length < BLOCK) break;
        const h = parseTarHeader(header);
        header = Buffer.alloc(0);
        if (!h) {
          ended = true;
          continue;
        }
        const path = entryPath(dest, h.name);
        if (h.type === 'directory') {
          // Owner rwx always: the directory's files are written after it.
          mkdirSync(path, { recursive: true });
          chmodSync(path, h.mode | 0o700);
          stats.directories++;
          continue;
        }
        if (path === resolve(dest)) throw new TarError(`${JSON.stringify(h.name)}: a file needs a name`);
        mkdirSync(dirname(path), { recursive: true });
        const fd = openSync(path, 'wx', h.mode);
        stats.files++;
        const pad = (BLOCK - (h.size % BLOCK)) % BLOCK;
        if (h.size === 0) closeSync(fd);
        else open = { fd, name: h.name, left: h.size, pad };
      }
    }
    if (open) throw new TarError(`truncated archive: ${open.name} ends ${open.left > 0 ? `${open.left} bytes short` : 'before its padding'}`);
    if (header.length > 0) throw new TarError(`truncated archive: a header of ${header.length} bytes`);
    if (!ended) throw new TarError('truncated archive: no end-of-archive marker');
    return stats;
  } finally {
    if (open) closeSync(open.fd);
  }
}
