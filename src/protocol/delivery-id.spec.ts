import { deliveryIdToBytes, deliveryIdToString, newDeliveryId } from './delivery-id.js';
import { refusal } from './testing/test-buffers.js';

describe('delivery ids', () => {
  const BYTES = Buffer.from('0f1e2d3c4b5a49788796a5b4c3d2e1f0', 'hex');
  const TEXT = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';

  it('write 16 bytes in UUID notation (8-4-4-4-12, lower case)', () => {
    expect(deliveryIdToString(BYTES)).toBe(TEXT);
    expect(deliveryIdToString(Buffer.alloc(16))).toBe('00000000-0000-0000-0000-000000000000');
  });

  it('read UUID notation back to the same 16 bytes, upper case too', () => {
    expect(deliveryIdToBytes(TEXT).equals(BYTES)).toBe(true);
    expect(deliveryIdToBytes(TEXT.toUpperCase()).equals(BYTES)).toBe(true);
  });

  it('are fresh and well-formed', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newDeliveryId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(deliveryIdToString(deliveryIdToBytes(id))).toBe(id);
  });

  it.each([
    '',
    '0f1e2d3c4b5a49788796a5b4c3d2e1f0',
    '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f',
    '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f00',
    '0f1e2d3c-4b5a4-978-8796-a5b4c3d2e1f0',
    '0f1e2d3g-4b5a-4978-8796-a5b4c3d2e1f0',
    '{0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0}',
    ' 0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0',
    '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0\n',
    '../../etc/passwd',
  ])('refuse %j: MALFORMED', (id) => {
    expect(refusal(() => deliveryIdToBytes(id)).code).toBe('MALFORMED');
  });
});
