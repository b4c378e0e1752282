// The bytes of a ZIP layout whose sources are buffers, for the specs of its writer and readers.
import { sliceLayout, ZipLayout } from '../zip-layout.js';

/** Materialises the bytes [start, end] (inclusive) of a layout whose sources are buffers. */
export function renderLayout(layout: ZipLayout<Buffer>, start = 0, end = layout.size - 1): Buffer {
  const pieces = sliceLayout(layout, start, end);
  return Buffer.concat(
    pieces.map((piece) => (piece.kind === 'bytes' ? piece.bytes : piece.source.subarray(piece.start, piece.start + piece.length))),
  );
}
