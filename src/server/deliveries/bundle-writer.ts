import { Injectable } from '@nestjs/common';
import { Readable } from 'node:stream';
import { PLUGIN_ENTRY_NAME } from '../../protocol/constants.js';
import { bufferEntry, layoutZip, sliceLayout, ZipLayout } from '../../protocol/zip-layout.js';
import { ContentStorage } from '../contents/content-storage.js';
import { Content } from '../contents/content.entity.js';

/** Where bundle bytes come from: the plug-in data in memory, or the stored content file. */
type BundleSource = Buffer | Content;

export type BundleLayout = ZipLayout<BundleSource>;

/**
 * [87] Merges plug-in data and content into one .dcx: plug-in data first, content stored as uploaded.
 * The content's CRC-32 was computed at upload, so nothing is hashed per delivery, the length is exact,
 * and any byte range can be produced on its own.
 */
@Injectable()
export class BundleWriter {
  constructor(private readonly storage: ContentStorage) {}

  layout(pluginData: Buffer, content: Content): BundleLayout {
    return layoutZip<BundleSource>(
      [bufferEntry(PLUGIN_ENTRY_NAME, pluginData), { name: content.name, size: content.size, crc32: content.crc32, source: content }],
      content.createdAt,
    );
  }

  /** The bytes [start, end] (inclusive) of a bundle, streamed from memory and disk in 1 MiB reads. */
  stream(layout: BundleLayout, start: number, end: number): Readable {
    const storage = this.storage;
    async function* pieces(): AsyncGenerator<Buffer> {
      for (const piece of sliceLayout(layout, start, end)) {
        if (piece.kind === 'bytes') yield piece.bytes;
        else if (Buffer.isBuffer(piece.source)) yield piece.source.subarray(piece.start, piece.start + piece.length);
        else yield* storage.openRead(piece.source.storageKey, { start: piece.start, end: piece.start + piece.length - 1 });
      }
    }
    return Readable.from(pieces(), { objectMode: false });
  }
}
