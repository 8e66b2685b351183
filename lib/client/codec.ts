/**
 * CBOR for the LAppS protocol (cbor-x). Maps decode to plain objects; byte strings are
 * plain CBOR byte strings both ways (no typed-array tags).
 *
 * Numbers, as cbor-x handles them:
 * - encoding: a JS number that is an integer in -2^32..2^32-1 becomes a CBOR integer; any
 *   other number (2^32 and beyond, fractions) becomes a float64. To send an exact 64-bit
 *   integer, pass a `bigint`: it becomes a CBOR integer (always the 8-byte form). A bigint
 *   outside -2^64..2^64-1 becomes a bignum (tags 2/3), which the server refuses.
 * - decoding: integers sent in the 8-byte form (every value outside -2^32..2^32-1, as the
 *   server writes the shortest form) decode as `bigint`; shorter integers as `number`.
 */
import { Decoder, Encoder } from 'cbor-x';

const options = { useRecords: false, mapsAsObjects: true, tagUint8Array: false };

const encoder = new Encoder(options);
const decoder = new Decoder(options);

/** Encodes one message; throws on values CBOR cannot hold. */
export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes one message (exactly one CBOR item); throws on invalid CBOR or trailing bytes. */
export function decode(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/** The bytes of a binary WebSocket message (ArrayBuffer or a view), or undefined. */
export function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // An ArrayBuffer from another realm (an iframe, a vm context).
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') {
    return new Uint8Array(data as ArrayBuffer);
  }
  return undefined;
}
