/** "::ffff:127.0.0.1" and "127.0.0.1" are one client: compare addresses in their IPv4 form when they have one. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}
