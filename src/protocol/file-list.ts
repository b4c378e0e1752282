// The list of content files that plug-in data [40] and receipts carry: count u16, then per file its
// name (u16 length + UTF-8), size u64 and SHA-256 (docs/PROTOCOL.md sections 3 and 5).
import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import { MAX_FILES, SHA256_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';

export interface ContentFileInfo {
  name: string;
  size: number;
  /** hex */
  sha256: string;
}

export function writeFileList(writer: BufferWriter, files: ContentFileInfo[]): BufferWriter {
  writer.addUInt16(files.length);
  for (const file of files) writer.addString(file.name).addUInt64(file.size).addFixed(Buffer.from(file.sha256, 'hex'), SHA256_SIZE);
  return writer;
}

/** Reads a file list; more than MAX_FILES is TOO_LARGE, with the message `tooMany` gives for the count. */
export function readFileList(reader: BufferReader, tooMany: (count: number) => string): ContentFileInfo[] {
  const count = reader.uint16('file count');
  if (count > MAX_FILES) throw new ProtocolError('TOO_LARGE', tooMany(count));
  const files: ContentFileInfo[] = [];
  for (let i = 0; i < count; i++) {
    files.push({
      name: reader.string(`file ${i} name`),
      size: reader.uint64(`file ${i} size`),
      sha256: reader.bytes(SHA256_SIZE, `file ${i} sha256`).toString('hex'),
    });
  }
  return files;
}
