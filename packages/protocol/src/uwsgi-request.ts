/**
 * The uwsgi request a router sends to a uwsgi worker: a packet header (modifier1, datasize of the vars
 * block, modifier2), the CGI-style vars block, then exactly CONTENT_LENGTH body bytes. The worker
 * answers with a raw HTTP/1.x response and closes the connection (one request per connection).
 *
 * The vars block must fit in 65535 bytes (SY_VARS_TOO_LARGE), and in the worker's `--buffer-size`
 * (uWSGI default 4096) to be accepted by the worker.
 */
import { VarsTooLargeError } from './errors.js';
import { MAX_VARS_SIZE, UWSGI_HEADER_SIZE } from './packet-codec.js';

/**
 * Incremental builder for a uwsgi request head. Strings are written as latin1 so header bytes pass
 * through unchanged (Node hands header values over as latin1 strings); use `addUtf8` for text that was
 * decoded as UTF-8 (e.g. a percent-decoded PATH_INFO).
 */
export class UwsgiVarsBuilder {
  private buf: Buffer;
  private pos = UWSGI_HEADER_SIZE;

  constructor(initialSize = 2048) {
    this.buf = Buffer.allocUnsafe(Math.max(initialSize, 64));
  }

  /** Adds a pair whose value is a latin1 (byte) string. */
  add(key: string, value: string): this {
    return this.put(key, value, 'latin1');
  }

  /** Adds a pair whose value is text to be encoded as UTF-8. */
  addUtf8(key: string, value: string): this {
    return this.put(key, value, 'utf8');
  }

  private put(key: string, value: string, valueEncoding: 'latin1' | 'utf8'): this {
    const keyLen = key.length; // keys are ASCII var names
    const valLen = valueEncoding === 'latin1' ? value.length : Buffer.byteLength(value, 'utf8');
    this.reserve(4 + keyLen + valLen);
    const b = this.buf;
    b.writeUInt16LE(keyLen, this.pos);
    this.pos += 2;
    this.pos += b.write(key, this.pos, keyLen, 'latin1');
    b.writeUInt16LE(valLen, this.pos);
    this.pos += 2;
    this.pos += b.write(value, this.pos, valLen, valueEncoding);
    return this;
  }

  private reserve(extra: number): void {
    const need = this.pos + extra;
    if (need - UWSGI_HEADER_SIZE > MAX_VARS_SIZE) throw new VarsTooLargeError(need - UWSGI_HEADER_SIZE);
    if (need <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Size of the vars block so far, in bytes. */
  get size(): number {
    return this.pos - UWSGI_HEADER_SIZE;
  }

  /** Returns header + vars as one Buffer (a view over the builder's storage; do not reuse the builder). */
  finish(modifier1: number, modifier2: number): Buffer {
    const b = this.buf;
    b[0] = modifier1 & 0xff;
    b.writeUInt16LE(this.pos - UWSGI_HEADER_SIZE, 1);
    b[3] = modifier2 & 0xff;
    return b.subarray(0, this.pos);
  }
}

/** Encodes a complete uwsgi request head from pairs (convenience for tests and simple callers). */
export function encodeUwsgiRequest(
  modifier1: number,
  modifier2: number,
  vars: Iterable<readonly [string, string]>,
): Buffer {
  const builder = new UwsgiVarsBuilder();
  for (const [k, v] of vars) builder.addUtf8(k, v);
  return builder.finish(modifier1, modifier2);
}
