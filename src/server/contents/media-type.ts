import { Injectable } from '@nestjs/common';
import { fileTypeFromFile } from 'file-type';
import { lookup } from 'mime-types';
import { normalizeMediaType } from './file-name.js';

const UNKNOWN = 'application/octet-stream';

/**
 * A content's media type: what its own bytes say (a PDF is a PDF whatever it is called), else what its name
 * says, else what the uploader declared, else application/octet-stream. `dcx publish` and most scripts declare
 * nothing useful; a browser declares what the name says.
 */
export function chooseMediaType(sniffed: string | undefined, name: string, declared: string | undefined): string {
  if (sniffed) return normalizeMediaType(sniffed);
  const byName = lookup(name);
  if (byName) return normalizeMediaType(byName);
  return normalizeMediaType(declared ?? UNKNOWN);
}

/** Reads the start of a stored upload (file-type's signatures) to tell its media type. */
@Injectable()
export class MediaTypeDetector {
  async detect(path: string, name: string, declared: string | undefined): Promise<string> {
    // Text formats have no signature (file-type answers undefined): the name decides them.
    const sniffed = await fileTypeFromFile(path);
    return chooseMediaType(sniffed?.mime, name, declared);
  }
}
