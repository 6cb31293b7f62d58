/**
 * The little of RFC 6455 framing a proxy needs: where frames end in a byte stream it relays unchanged,
 * and how to write a close frame. Tunnels never decode payloads; they only need a frame boundary so that
 * a router-initiated close (1001 Going Away on shutdown, drain deadline or idle timeout) is never spliced
 * into the middle of a frame the node is still sending.
 *
 * Frame header (§5.2): byte 0 = FIN/RSV/opcode, byte 1 = MASK bit + 7-bit length; length 126 → 16-bit
 * extended length, 127 → 64-bit; MASK → 4-byte key; then the payload. A 64-bit length above 2^53 − 1
 * cannot be tracked exactly: the tracker then reports `broken` and the caller closes without waiting for a
 * boundary (such a frame would take petabytes anyway).
 */

/** Close status codes used by the router (RFC 6455 §7.4.1). */
export const CLOSE_GOING_AWAY = 1001;

const H_FIRST = 0;
const H_LENGTH = 1;
const H_EXTENDED = 2;
const H_MASK = 3;
const PAYLOAD = 4;

/** Follows frame boundaries in one direction of a WebSocket stream. */
export class FrameBoundaryTracker {
  private state = H_FIRST;
  /** Bytes still expected in the current header part (extended length or mask key). */
  private need = 0;
  private masked = false;
  /** Extended length being assembled, big-endian. */
  private length = 0;
  /** Payload bytes left in the current frame. */
  private remaining = 0;
  /** Complete frames seen. */
  frames = 0;
  /** A 64-bit length beyond Number.MAX_SAFE_INTEGER was announced: boundaries are unknown from here on. */
  broken = false;

  /** True when the next byte would start a new frame. */
  get atBoundary(): boolean {
    return this.state === H_FIRST && !this.broken;
  }

  /**
   * Consumes `chunk[start, end)`. With `stopAtBoundary`, returns the offset of the first frame boundary
   * reached after at least one byte (or `end` when none is reached); without it, consumes everything and
   * returns `end`. The chunk is only read.
   */
  feed(chunk: Buffer, start = 0, end = chunk.length, stopAtBoundary = false): number {
    let pos = start;
    while (pos < end && !this.broken) {
      switch (this.state) {
        case H_FIRST:
          pos++;
          this.state = H_LENGTH;
          break;
        case H_LENGTH: {
          const b = chunk[pos++]!;
          this.masked = (b & 0x80) !== 0;
          const len = b & 0x7f;
          this.length = 0;
          if (len === 126) {
            this.state = H_EXTENDED;
            this.need = 2;
          } else if (len === 127) {
            this.state = H_EXTENDED;
            this.need = 8;
          } else {
            this.length = len;
            this.afterLength();
          }
          break;
        }
        case H_EXTENDED:
          this.length = this.length * 256 + chunk[pos++]!;
          if (--this.need === 0) {
            if (!Number.isSafeInteger(this.length)) {
              this.broken = true;
              return end;
            }
            this.afterLength();
          }
          break;
        case H_MASK:
          pos++;
          if (--this.need === 0) this.startPayload();
          break;
        default: {
          const n = Math.min(this.remaining, end - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endFrame();
        }
      }
      if (stopAtBoundary && this.state === H_FIRST) return pos;
    }
    return this.broken ? end : pos;
  }

  private afterLength(): void {
    if (this.masked) {
      this.state = H_MASK;
      this.need = 4;
    } else {
      this.startPayload();
    }
  }

  private startPayload(): void {
    this.remaining = this.length;
    if (this.remaining === 0) this.endFrame();
    else this.state = PAYLOAD;
  }

  private endFrame(): void {
    this.state = H_FIRST;
    this.frames++;
  }
}

/**
 * A close frame carrying `code` and no reason: 2 header bytes + 2 code bytes, unmasked as a server sends
 * it (§5.1), or masked with a random key as a client must (used towards nodes).
 */
export function closeFrame(code: number, maskKey?: Buffer): Buffer {
  if (maskKey === undefined) return Buffer.from([0x88, 0x02, code >> 8, code & 0xff]);
  const frame = Buffer.alloc(8);
  frame[0] = 0x88;
  frame[1] = 0x82;
  maskKey.copy(frame, 2, 0, 4);
  frame[6] = (code >> 8) ^ maskKey[0]!;
  frame[7] = (code & 0xff) ^ maskKey[1]!;
  return frame;
}
