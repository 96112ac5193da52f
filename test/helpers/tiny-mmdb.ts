import { isIPv4 } from 'node:net';

/**
 * A minimal MaxMind DB (MMDB format 2.0) with one IPv4 network and one record, written byte by byte
 * (no writer library is installed): an IPv6 search tree of 24-bit records whose path for `::a.b.c.d`
 * under the given prefix leads to `{ country_code }`, the layout of the bundled ip-location-db file.
 * Enough for a test to prove that an operator's file replaces the bundled one.
 */
export const tinyCountryMmdb = (network: string, prefixLength: number, countryCode: string): Buffer => {
  const [address] = network.split('/') as [string];
  if (!isIPv4(address)) throw new Error('tinyCountryMmdb takes an IPv4 network');
  const octets = address.split('.').map(Number);
  // The path: 96 zero bits (IPv4 inside an IPv6 tree), then the network's prefix bits.
  const bits: number[] = [...Array<number>(96).fill(0)];
  for (let i = 0; i < prefixLength; i += 1) bits.push((octets[i >> 3]! >> (7 - (i & 7))) & 1);
  const nodeCount = bits.length;
  const dataPointer = nodeCount + 16; // the first byte of the data section
  const tree = Buffer.alloc(nodeCount * 6);
  bits.forEach((bit, node) => {
    const next = node + 1 < nodeCount ? node + 1 : dataPointer;
    const [left, right] = bit === 0 ? [next, nodeCount] : [nodeCount, next];
    tree.writeUIntBE(left, node * 6, 3);
    tree.writeUIntBE(right, node * 6 + 3, 3);
  });
  const data = map({ country_code: text(countryCode) });
  const metadata = map({
    binary_format_major_version: uint(5, 2),
    binary_format_minor_version: uint(5, 0),
    build_epoch: extended(9, 1_764_000_000, 4),
    database_type: text('Tiny-Test-Country'),
    description: map({ en: text('one network, for tests') }),
    ip_version: uint(5, 6),
    languages: Buffer.concat([Buffer.from([0x01, 11 - 7]), text('en')]),
    node_count: uint(6, nodeCount),
    record_size: uint(5, 24),
  });
  return Buffer.concat([
    tree,
    Buffer.alloc(16),
    data,
    Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'),
    metadata,
  ]);
};

const text = (value: string): Buffer => {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length >= 29) throw new Error('short strings only');
  return Buffer.concat([Buffer.from([(2 << 5) | bytes.length]), bytes]);
};

const bigEndian = (value: number): Buffer => {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from(bytes);
};

/** uint16 (type 5) or uint32 (type 6): the control byte's size is the number of bytes. */
const uint = (type: 5 | 6, value: number): Buffer => {
  const bytes = bigEndian(value);
  return Buffer.concat([Buffer.from([(type << 5) | bytes.length]), bytes]);
};

/** An extended type (uint64 is 9): type bits 0, then a byte with `type - 7`. */
const extended = (type: number, value: number, size: number): Buffer => {
  const bytes = Buffer.alloc(size);
  bytes.writeUIntBE(value, 0, size);
  return Buffer.concat([Buffer.from([size, type - 7]), bytes]);
};

const map = (entries: Record<string, Buffer>): Buffer =>
  Buffer.concat([
    Buffer.from([(7 << 5) | Object.keys(entries).length]),
    ...Object.entries(entries).flatMap(([key, value]) => [text(key), value]),
  ]);
