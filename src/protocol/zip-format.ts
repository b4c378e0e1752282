/*
 * The ZIP records DCX writes (zip-layout.ts, the server's bundles) and reads (zip-stream.ts while a
 * download streams past, the client's bundle reader): signatures, fixed sizes, field offsets, flags.
 * Layout: APPNOTE.TXT 4.3 (records) and 4.5 (extra fields); every field is little-endian.
 */

/** Every record starts with a 4-byte signature. */
export const ZIP_SIGNATURE_SIZE = 4;
export const LOCAL_HEADER_SIGNATURE = 0x04034b50;
export const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
export const ZIP64_END_SIGNATURE = 0x06064b50;
export const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
export const END_SIGNATURE = 0x06054b50;

/** Fixed parts of the records (a header's name and extra field follow it). */
export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const ZIP64_END_SIZE = 56;
export const ZIP64_LOCATOR_SIZE = 20;
export const END_SIZE = 22;

/** Field offsets in a local header. */
export const LOCAL_FLAGS_OFFSET = 6;
export const LOCAL_METHOD_OFFSET = 8;
export const LOCAL_CRC32_OFFSET = 14;
export const LOCAL_COMPRESSED_SIZE_OFFSET = 18;
export const LOCAL_UNCOMPRESSED_SIZE_OFFSET = 22;
export const LOCAL_NAME_LENGTH_OFFSET = 26;
export const LOCAL_EXTRA_LENGTH_OFFSET = 28;

/** An extra field: id u16, size u16, then its body; ZIP64's body holds 8-byte sizes and offsets. */
export const EXTRA_HEADER_SIZE = 4;
export const ZIP64_EXTRA_ID = 0x0001;
export const ZIP64_FIELD_SIZE = 8;

export const FLAG_ENCRYPTED = 0x0001;
/** Bit 3: CRC and sizes follow the data instead of standing in the local header. */
export const FLAG_DATA_DESCRIPTOR = 0x0008;
export const FLAG_UTF8_NAME = 0x0800;
export const METHOD_STORE = 0;

export const VERSION_STORE = 10; // 1.0: stored entries
export const VERSION_ZIP64 = 45; // 4.5: ZIP64 extensions
export const MADE_BY_UNIX = 3 << 8;
export const UNIX_REGULAR_FILE_0644 = (0o100644 << 16) >>> 0;

/** A 16- or 32-bit field at its maximum: the value is in the ZIP64 records (or too many entries). */
export const MAX_16 = 0xffff;
export const MAX_32 = 0xffffffff;

/** The whole length of a local header (name and extra field included), read from its fixed part. */
export function localHeaderLength(fixedPart: Buffer): number {
  return LOCAL_HEADER_SIZE + fixedPart.readUInt16LE(LOCAL_NAME_LENGTH_OFFSET) + fixedPart.readUInt16LE(LOCAL_EXTRA_LENGTH_OFFSET);
}
