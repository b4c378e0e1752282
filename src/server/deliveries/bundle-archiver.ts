import { Injectable } from '@nestjs/common';
import { ZipArchive } from 'archiver';
import { Readable } from 'node:stream';
import { PLUGIN_ENTRY_NAME } from '../../protocol/constants.js';

export interface BundleContent {
  name: string;
  source: Readable;
  date: Date;
}

/** [87] Merges plug-in data and content into one .dcx (a ZIP): plug-in data first, content stored as is. */
@Injectable()
export class BundleArchiver {
  create(pluginData: Buffer, content: BundleContent): ZipArchive {
    const archive = new ZipArchive({ store: true });
    archive.append(pluginData, { name: PLUGIN_ENTRY_NAME, date: content.date });
    archive.append(content.source, { name: content.name, date: content.date });
    void archive.finalize().catch((error: Error) => archive.destroy(error));
    return archive;
  }
}
