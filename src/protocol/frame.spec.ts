import { FrameType } from './constants.js';
import { Frame, FrameParser, serializeFrame } from './frame.js';
import { refusal } from './testing/test-buffers.js';
import { CONFIRMATION_FRAME as CONFIRMATION } from './testing/worked-example.js';

// Frames written out byte by byte from the layout in docs/PROTOCOL.md, never by the code under test.
// Answer: [len u32][version 01][type 02][status u8][delivery id 16][message u16+utf8][receipt u16+bytes]
const ANSWER = Buffer.from(
  '00000022' + '01' + '02' + '02' + '0f1e2d3c4b5a49788796a5b4c3d2e1f0' + '0007' + Buffer.from('unknown').toString('hex') + '0000',
  'hex',
);

function parseAll(parser: FrameParser, chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) parser.parse(chunk, (frame) => frames.push(frame));
  return frames;
}

function expectFrame(frame: Frame, whole: Buffer, type: FrameType): void {
  expect(frame.version).toBe(1);
  expect(frame.type).toBe(type);
  expect(frame.raw.equals(whole)).toBe(true);
  expect(frame.body.equals(whole.subarray(6))).toBe(true);
}

describe('hand-built frames', () => {
  it('have the lengths their headers announce', () => {
    expect(CONFIRMATION.length).toBe(0x74);
    expect(ANSWER.length).toBe(0x22);
  });
});

describe('serializeFrame', () => {
  it('writes the 6-byte header in front of the body', () => {
    expect(serializeFrame(FrameType.Answer, ANSWER.subarray(6)).equals(ANSWER)).toBe(true);
    expect(serializeFrame(FrameType.Confirmation, Buffer.alloc(0)).toString('hex')).toBe('000000060101');
  });
});

describe('FrameParser', () => {
  it.each([
    ['confirmation', CONFIRMATION, FrameType.Confirmation],
    ['answer', ANSWER, FrameType.Answer],
  ])('reads a %s frame fed whole', (_name, whole, type) => {
    const parser = new FrameParser();
    const frames = parseAll(parser, [whole]);
    expect(frames).toHaveLength(1);
    expectFrame(frames[0], whole, type);
    expect(parser.pending).toBe(0);
  });

  it.each([
    ['confirmation', CONFIRMATION, FrameType.Confirmation],
    ['answer', ANSWER, FrameType.Answer],
  ])('reads a %s frame split in two at every byte position', (_name, whole, type) => {
    for (let split = 1; split < whole.length; split++) {
      const parser = new FrameParser();
      const first = parseAll(parser, [whole.subarray(0, split)]);
      expect(first).toHaveLength(0);
      expect(parser.pending).toBe(split);
      const second = parseAll(parser, [whole.subarray(split)]);
      expect(second).toHaveLength(1);
      expectFrame(second[0], whole, type);
      expect(parser.pending).toBe(0);
    }
  });

  it('reads frames fed one byte at a time', () => {
    const parser = new FrameParser();
    const stream = Buffer.concat([CONFIRMATION, ANSWER]);
    const frames = parseAll(
      parser,
      [...stream].map((byte) => Buffer.from([byte])),
    );
    expect(frames).toHaveLength(2);
    expectFrame(frames[0], CONFIRMATION, FrameType.Confirmation);
    expectFrame(frames[1], ANSWER, FrameType.Answer);
    expect(parser.pending).toBe(0);
  });

  it('reads two frames arriving in one chunk', () => {
    const frames = parseAll(new FrameParser(), [Buffer.concat([ANSWER, CONFIRMATION])]);
    expect(frames).toHaveLength(2);
    expectFrame(frames[0], ANSWER, FrameType.Answer);
    expectFrame(frames[1], CONFIRMATION, FrameType.Confirmation);
  });

  it('keeps the first bytes of the next frame until the rest arrives', () => {
    const parser = new FrameParser();
    const frames = parseAll(parser, [Buffer.concat([ANSWER, CONFIRMATION.subarray(0, 9)])]);
    expect(frames).toHaveLength(1);
    expectFrame(frames[0], ANSWER, FrameType.Answer);
    expect(parser.pending).toBe(9);
    const rest = parseAll(parser, [CONFIRMATION.subarray(9)]);
    expect(rest).toHaveLength(1);
    expectFrame(rest[0], CONFIRMATION, FrameType.Confirmation);
  });

  it('hands out frames that survive the caller reusing its chunk', () => {
    const chunk = Buffer.from(ANSWER);
    const frames = parseAll(new FrameParser(), [chunk]);
    chunk.fill(0);
    expectFrame(frames[0], ANSWER, FrameType.Answer);
  });

  it.each([0, 1, 5])('refuses a length of %i, shorter than the header, as MALFORMED', (length) => {
    const bytes = Buffer.from([0, 0, 0, length, 1, 1]);
    expect(refusal(() => parseAll(new FrameParser(), [bytes])).code).toBe('MALFORMED');
  });

  it('accepts a header-only frame (length 6) as an empty body', () => {
    const frames = parseAll(new FrameParser(), [Buffer.from('000000060102', 'hex')]);
    expect(frames).toHaveLength(1);
    expect(frames[0].body.length).toBe(0);
  });

  it('refuses a frame over the limit as soon as the 4 length bytes arrive', () => {
    const parser = new FrameParser(100);
    parser.parse(Buffer.from([0, 0]), () => undefined);
    expect(refusal(() => parser.parse(Buffer.from([0, 101]), () => undefined)).code).toBe('TOO_LARGE');
    // The parser dropped what it held: nothing of the refused frame stays buffered.
    expect(parser.pending).toBe(0);
  });

  it('accepts a frame exactly at the limit', () => {
    const frames = parseAll(new FrameParser(ANSWER.length), [ANSWER]);
    expect(frames).toHaveLength(1);
  });

  it('refuses a 4 GiB announcement with the default limit (64 KiB)', () => {
    expect(refusal(() => parseAll(new FrameParser(), [Buffer.from('ffffffff', 'hex')])).code).toBe('TOO_LARGE');
    expect(refusal(() => parseAll(new FrameParser(), [Buffer.from('00010001', 'hex')])).code).toBe('TOO_LARGE');
    expect(parseAll(new FrameParser(), [Buffer.from('00010000', 'hex')])).toHaveLength(0);
  });

  it.each([0, 2, 0xff])('refuses version %i as UNSUPPORTED_VERSION as soon as its byte arrives', (version) => {
    const parser = new FrameParser();
    parser.parse(Buffer.from('00000022', 'hex'), () => undefined);
    expect(refusal(() => parser.parse(Buffer.from([version]), () => undefined)).code).toBe('UNSUPPORTED_VERSION');
  });

  it('delivers the frames before a bad one in the same chunk, then refuses', () => {
    const frames: Frame[] = [];
    const parser = new FrameParser();
    const bad = Buffer.from('000000030101', 'hex');
    expect(refusal(() => parser.parse(Buffer.concat([ANSWER, bad]), (frame) => frames.push(frame))).code).toBe('MALFORMED');
    expect(frames).toHaveLength(1);
  });

  it('reports the bytes of an unfinished frame when the peer hangs up mid-frame', () => {
    const parser = new FrameParser();
    expect(parser.pending).toBe(0);
    parseAll(parser, [Buffer.concat([ANSWER, CONFIRMATION.subarray(0, 40)])]);
    expect(parser.pending).toBe(40);
    parseAll(parser, [CONFIRMATION.subarray(40, 41)]);
    expect(parser.pending).toBe(41);
  });
});
