import { acceptedRequestId, requestIdFor } from './request-id.js';

describe('request ids', () => {
  test.each([['3f2b8c1e-6a4d-4f7e-9b0a-1c2d3e4f5a6b'], ['01HZX3J8K9Q2W5E7R4T6Y8U0IP'], ['trace:abc.def_123-4'], ['a'], ['x'.repeat(128)]])(
    'a well-formed id (%s) is kept',
    (id) => {
      expect(acceptedRequestId(id)).toBe(id);
      expect(requestIdFor(id)).toBe(id);
    },
  );

  test.each([
    [''],
    ['has space'],
    ['new\nline'],
    ['"quoted"'],
    ['<script>'],
    ['-leading-dash'],
    ['x'.repeat(129)],
    ['ünïcode'],
    [['a', 'b']],
    [undefined],
  ])('anything else (%j) is replaced by a fresh UUID', (header) => {
    expect(acceptedRequestId(header)).toBeUndefined();
    const id = requestIdFor(header);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(requestIdFor(header)).not.toBe(id);
  });
});
