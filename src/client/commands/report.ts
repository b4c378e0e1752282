import { DeliveryResult } from '../accept-bundle.js';

/** The `--json` object of `open` and `fetch`. */
export function deliveryJson(result: DeliveryResult): object {
  return {
    deliveryId: result.deliveryId,
    status: result.status,
    files: result.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256, ...(f.alreadySaved ? { alreadySaved: true } : {}) })),
    receipt: result.receipt.toString('base64'),
    receiptPath: result.receiptPath,
  };
}

export function deliveryText(result: DeliveryResult): string {
  const lines = result.files.map((f) => `${f.alreadySaved ? 'already saved' : 'saved'} ${f.path} (${f.size} bytes, sha256 ${f.sha256})`);
  const how = result.status === 'accepted' ? 'confirmed' : 'already confirmed';
  lines.push(`delivery ${result.deliveryId} ${how}; receipt: ${result.receiptPath}`);
  return lines.join('\n');
}
