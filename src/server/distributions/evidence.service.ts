import { Injectable, Logger } from '@nestjs/common';
import { ZipArchive } from 'archiver';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { csvCell } from '../deliveries/csv.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { DistributionRepository } from './distribution.repository.js';
import { DistributionsService } from './distributions.service.js';

const PAGE = 1000;

const README = (id: string) => `Evidence of distribution ${id}

receipts/<deliveryId>.receipt  the server-signed receipt of each confirmed delivery, the bytes a client keeps
                               in DCX_HOME/receipts/ (check one with: dcx verify-receipt <file>)
recipients.csv                 every recipient, its current delivery and status
audit.csv                      the audit trail of the distribution and its deliveries
server-keys.json               the server's /.well-known/dcx document (keys the receipts are signed with)

Check every receipt against the keys you pinned with dcx trust:
  dcx verify-receipt --pack evidence.zip
(exit 0: all valid; 7: one is not). Compare server-keys.json with the pinned key's fingerprint.
`;

/** GET /api/distributions/:id/evidence.zip: streamed and compressed, read by pages (memory flat). */
@Injectable()
export class EvidenceService {
  private readonly logger = new Logger(EvidenceService.name);

  constructor(
    private readonly distributions: DistributionsService,
    private readonly repository: DistributionRepository,
    private readonly keys: ServerKeysService,
  ) {}

  async send(id: string, res: ServerResponse): Promise<void> {
    await this.distributions.found(id);
    res.setHeader('Content-Type', 'application/zip');
    res.setHeader('Content-Disposition', `attachment; filename="distribution-${id}-evidence.zip"`);
    res.setHeader('Cache-Control', 'private, no-store');
    const zip = new ZipArchive({ zlib: { level: 6 } });
    zip.on('warning', (error) => this.logger.warn(`evidence ${id}: ${error.message}`));
    zip.pipe(res);
    // A failing page read (the database went away) must end this response, not the process.
    const cutOff = (error: Error) => {
      this.logger.error(`evidence ${id} cut off: ${error.message}`);
      zip.abort();
      res.destroy();
    };
    const csv = (lines: AsyncGenerator<string>) => Readable.from(lines).on('error', cutOff);
    try {
      zip.append(README(id), { name: 'README.txt' });
      zip.append(`${JSON.stringify(this.keys.wellKnown(), null, 2)}\n`, { name: 'server-keys.json' });
      zip.append(csv(this.distributions.recipientsCsv(id, undefined)), { name: 'recipients.csv' });
      zip.append(csv(this.auditCsv(id)), { name: 'audit.csv' });
      await this.appendReceipts(zip, id);
      await zip.finalize();
    } catch (error) {
      // Headers are gone: the cut-off archive is what the client sees.
      cutOff(error as Error);
    }
  }

  /** Receipts a page at a time; the next page is read once archiver has taken the previous one. */
  private async appendReceipts(zip: ZipArchive, id: string): Promise<void> {
    let after: string | null = null;
    for (;;) {
      const page = await this.repository.receiptsPage(id, after, PAGE);
      const taken = waitForEntries(zip, page.length);
      for (const { id: deliveryId, receipt } of page) zip.append(receipt, { name: `receipts/${deliveryId}.receipt` });
      await taken;
      if (page.length < PAGE) return;
      after = page[page.length - 1].id;
    }
  }

  private async *auditCsv(id: string): AsyncGenerator<string> {
    yield 'event_id,delivery_id,type,reason,remote_address,at,detail\r\n';
    let after = '0';
    for (;;) {
      const page = await this.repository.auditPage(id, after, PAGE);
      if (page.length > 0) {
        yield page
          .map(
            (e) =>
              [e.id, e.delivery_id, e.type, e.reason, e.remote_address, e.at, e.detail === null ? null : JSON.stringify(e.detail)]
                .map(csvCell)
                .join(',') + '\r\n',
          )
          .join('');
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1].id;
    }
  }
}

function waitForEntries(zip: ZipArchive, count: number): Promise<void> {
  if (count === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let seen = 0;
    const onEntry = () => {
      if (++seen < count) return;
      zip.off('entry', onEntry);
      zip.off('error', reject);
      resolve();
    };
    zip.on('entry', onEntry);
    zip.once('error', reject);
  });
}
