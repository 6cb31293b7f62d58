/**
 * Strict, incremental HTTP/1.x response parser for the router's raw-socket upstream clients (HTTP/1.1
 * keep-alive nodes and uWSGI nodes, which answer a uwsgi request with a raw HTTP/1.x response and close).
 *
 * Strictness follows llhttp's strict mode and http-hardening.md §1.1/§2.1/§2.3: the head and trailer rules
 * are in response-head-parser.ts; here, strict chunk sizes, extensions (bounded) and terminators. Every
 * violation throws an UpstreamProtocolError (errors.ts, SY_UPSTREAM_BAD_RESPONSE) whose `reason` names the
 * rule; the parser is then dead until reset().
 *
 * Where llhttp (Node 20) and this parser differ, this one is stricter (Transfer-Encoding other than
 * `chunked`, DEL or CTL in the reason, leading CR/LF before the status line, empty chunk-extension values,
 * framing fields in trailers), except that HTAB counts as whitespace around every value as RFC 9110 OWS
 * says (llhttp does not: `chunked<HTAB>` makes it read until EOF), and that `Connection: close` anywhere
 * wins over `keep-alive`.
 *
 * Performance contract: heads are parsed as response-head-parser.ts describes (one latin1 decode and one
 * anchored regex for a whole head at the start of a chunk); bodies are delivered as views of the input (no
 * copy); no closure is created per exchange.
 */
import { UpstreamProtocolError, type UpstreamProtocolErrorReason } from './errors.js';
import { ResponseHeadParser, TCHAR } from './response-head-parser.js';

/** Re-exported: the parser's error, now in errors.ts, stays importable from here. */
export { UpstreamProtocolError, type UpstreamProtocolErrorReason } from './errors.js';

export type ResponseFraming = 'length' | 'chunked' | 'eof' | 'none';

export interface ResponseHead {
  /** 100..999 (exactly 3 digits on the wire). */
  readonly statusCode: number;
  /** Reason phrase as received (latin1, may be ''). */
  readonly reason: string;
  readonly httpMinor: 0 | 1;
  /** Flat [name, value, ...], latin1 as received; names case preserved, values trimmed of SP/HTAB. */
  readonly rawHeaders: string[];
  /** The Content-Length value, -1 when absent (reported even when the framing is 'none', e.g. HEAD). */
  readonly contentLength: number;
  /** 'none' for HEAD, 1xx, 204 and 304; else 'chunked' (TE), 'length' (CL) or 'eof' (read until close). */
  readonly framing: ResponseFraming;
  /**
   * Whether the connection may carry another exchange: false with `Connection: close`, for HTTP/1.0
   * without `Connection: keep-alive`, for 'eof' framing and for 101 (the connection leaves HTTP).
   */
  readonly keepAlive: boolean;
  /** Status 101: after onHead/onComplete the bytes beyond the returned offset are the upgraded stream. */
  readonly upgrade: boolean;
}

export interface ResponseParserHandler {
  /** The final head (non-1xx), or a 101. */
  onHead(head: ResponseHead): void;
  /** An informational 1xx other than 101 (100, 102, 103, ...); another head follows it. */
  onInformational?(head: ResponseHead): void;
  /** Decoded body bytes. May be a view of the input chunk: valid only during the call (copy to keep). */
  onBody(chunk: Buffer): void;
  /** End of the message. */
  onComplete(): void;
}

export interface ResponseParserOptions {
  /** Bytes of a whole head (status line through the empty line), and of a trailer section. Default 16384. */
  readonly maxHeaderSize?: number;
  /** Header fields per head. Default 100. */
  readonly maxHeaderCount?: number;
}

export const DEFAULT_MAX_HEADER_SIZE = 16384;
export const DEFAULT_MAX_HEADER_COUNT = 100;
/** Total chunk-extension bytes (from each `;` to the line end) allowed per message, as Node (CVE-2024-22019). */
export const MAX_CHUNK_EXTENSION_BYTES = 16384;
/** Hex digits allowed in a chunk size (leading zeros included). */
const MAX_CHUNK_SIZE_DIGITS = 16;

// Parser states.
const S_HEAD = 0;
const S_LENGTH = 1;
const S_EOF = 2;
const S_CHUNK_SIZE = 3; // expecting the first hex digit
const S_CHUNK_SIZE_MORE = 4; // hex digits, ';' or CR
const S_EXT_NAME_START = 5;
const S_EXT_NAME = 6;
const S_EXT_VALUE_START = 7;
const S_EXT_VALUE = 8;
const S_EXT_QUOTED = 9;
const S_EXT_QUOTED_PAIR = 10;
const S_EXT_QUOTED_DONE = 11;
const S_CHUNK_SIZE_LF = 12;
const S_CHUNK_DATA = 13;
const S_CHUNK_DATA_CR = 14;
const S_CHUNK_DATA_LF = 15;
const S_TRAILERS = 16;
const S_COMPLETE = 17;
const S_DEAD = 18;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/** Hex digit values; 255 = not a hex digit. */
const HEX = new Uint8Array(256).fill(255);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

/**
 * One parser per upstream connection, reused across keep-alive exchanges: reset(method) before each
 * exchange, then execute() every chunk read, and finish() when the peer closes. Not re-entrant; a handler
 * may call reset() from a callback (execute then returns at once), and an exception thrown by a handler
 * propagates unchanged and leaves the parser unusable until reset().
 */
export class ResponseParser extends ResponseHeadParser {
  private readonly handler: ResponseParserHandler;

  private state: number = S_HEAD;
  private error: UpstreamProtocolError | null = null;
  /** Bumped by reset(): a callback that reset the parser makes execute() stop. */
  private generation = 0;
  private headMethod = false;
  private gotHead = false;

  // Body.
  /** Bytes left in the Content-Length body or current chunk; the chunk size while it is parsed. */
  private remaining = 0;
  private chunkDigits = 0;
  private extensionBytes = 0;

  constructor(handler: ResponseParserHandler, options: ResponseParserOptions = {}) {
    const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    const maxHeaderCount = options.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT;
    if (!Number.isSafeInteger(maxHeaderSize) || maxHeaderSize < 16) {
      throw new RangeError(`maxHeaderSize must be an integer >= 16, got ${maxHeaderSize}`);
    }
    if (!Number.isSafeInteger(maxHeaderCount) || maxHeaderCount < 0) {
      throw new RangeError(`maxHeaderCount must be an integer >= 0, got ${maxHeaderCount}`);
    }
    super(maxHeaderSize, maxHeaderCount);
    this.handler = handler;
  }

  /** The message has ended (onComplete was called); execute() consumes nothing more until reset(). */
  get complete(): boolean {
    return this.state === S_COMPLETE;
  }

  /** onHead was called for this exchange (informational 1xx heads do not count). */
  get headReceived(): boolean {
    return this.gotHead;
  }

  /**
   * Prepare for the response to a new request; `method` 'HEAD' means no body. A new parser behaves as if
   * reset('GET') had been called.
   */
  reset(method: string): void {
    this.generation++;
    this.state = S_HEAD;
    this.error = null;
    this.headMethod = method === 'HEAD';
    this.gotHead = false;
    this.lineLen = 0;
    this.sectionDone = false;
    this.remaining = 0;
    this.chunkDigits = 0;
    this.extensionBytes = 0;
    this.beginHead();
  }

  /**
   * Feed bytes. Returns how many were consumed: all of them, unless the message completed inside the chunk,
   * in which case the offset where it ended (the rest is excess for keep-alive, or the upgraded stream after
   * a 101). Returns 0 once complete. Throws UpstreamProtocolError on malformed input.
   */
  execute(chunk: Buffer): number {
    const len = chunk.length;
    const gen = this.generation;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case S_HEAD: {
          pos = this.collect(chunk, pos, len, false);
          if (!this.sectionDone) return pos;
          this.sectionDone = false;
          this.endHead();
          if (this.generation !== gen || this.complete) return pos;
          break;
        }
        case S_LENGTH: {
          const avail = len - pos;
          const n = Math.min(avail, this.remaining);
          const start = pos;
          pos += n;
          this.remaining -= n;
          this.handler.onBody(n === len ? chunk : chunk.subarray(start, pos));
          if (this.generation !== gen) return pos;
          if (this.remaining === 0) return this.completeMessage(pos);
          break;
        }
        case S_EOF:
          this.handler.onBody(pos === 0 ? chunk : chunk.subarray(pos));
          return len;
        case S_CHUNK_DATA: {
          const avail = len - pos;
          const n = Math.min(avail, this.remaining);
          const start = pos;
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          this.handler.onBody(chunk.subarray(start, pos));
          if (this.generation !== gen) return pos;
          break;
        }
        case S_CHUNK_DATA_CR:
          if (chunk[pos] !== CR) throw this.fail('bad-chunk-terminator');
          pos++;
          this.state = S_CHUNK_DATA_LF;
          break;
        case S_CHUNK_DATA_LF:
          if (chunk[pos] !== LF) throw this.fail('bad-chunk-terminator');
          pos++;
          this.state = S_CHUNK_SIZE;
          break;
        case S_TRAILERS: {
          pos = this.collect(chunk, pos, len, true);
          if (!this.sectionDone) return pos;
          this.sectionDone = false;
          return this.completeMessage(pos);
        }
        case S_COMPLETE:
          return pos;
        case S_DEAD:
          throw this.error!;
        default:
          pos = this.chunkSizeLine(chunk, pos, len);
      }
    }
    return pos;
  }

  /**
   * The peer closed. Completes an 'eof' body (onComplete); no-op when already complete; throws
   * UpstreamProtocolError('premature-eof') when the head or a length/chunked body is unfinished (including
   * when no byte arrived at all).
   */
  finish(): void {
    switch (this.state) {
      case S_COMPLETE:
        return;
      case S_EOF:
        this.state = S_COMPLETE;
        this.handler.onComplete();
        return;
      case S_DEAD:
        throw this.error!;
      default:
        throw this.fail('premature-eof');
    }
  }

  protected override fail(reason: UpstreamProtocolErrorReason): UpstreamProtocolError {
    const error = new UpstreamProtocolError(reason);
    this.state = S_DEAD;
    this.error = error;
    return error;
  }

  private completeMessage(pos: number): number {
    this.state = S_COMPLETE;
    this.handler.onComplete();
    return pos;
  }

  private endHead(): void {
    const status = this.statusCode;
    const upgrade = status === 101;
    let framing: ResponseFraming;
    if (status < 200 || status === 204 || status === 304 || this.headMethod) framing = 'none';
    else if (this.chunked) framing = 'chunked';
    else if (this.contentLength >= 0) framing = 'length';
    else framing = 'eof';
    const keepAlive =
      framing !== 'eof' && !upgrade && !this.connectionClose && (this.httpMinor === 1 || this.connectionKeepAlive);
    const head: ResponseHead = {
      statusCode: status,
      reason: this.reason,
      httpMinor: this.httpMinor,
      rawHeaders: this.rawHeaders,
      contentLength: this.contentLength,
      framing,
      keepAlive,
      upgrade,
    };
    if (status < 200 && !upgrade) {
      this.beginHead();
      this.handler.onInformational?.(head);
      return;
    }
    const gen = this.generation;
    this.gotHead = true;
    this.handler.onHead(head);
    if (this.generation !== gen) return;
    if (framing === 'chunked') {
      this.state = S_CHUNK_SIZE;
    } else if (framing === 'eof') {
      this.state = S_EOF;
    } else if (framing === 'length' && this.contentLength > 0) {
      this.state = S_LENGTH;
      this.remaining = this.contentLength;
    } else {
      this.state = S_COMPLETE;
      this.handler.onComplete();
    }
  }

  /**
   * The chunk-size line: 1*16HEXDIG (<= 2^53-1), then optional extensions `;name[=token|quoted-string]`
   * with no whitespace (as llhttp strict), then CRLF. Consumes until the line ends or the input does.
   */
  private chunkSizeLine(chunk: Buffer, pos: number, len: number): number {
    let state = this.state;
    while (pos < len) {
      const c = chunk[pos]!;
      if (
        state >= S_EXT_NAME_START &&
        state <= S_EXT_QUOTED_DONE &&
        ++this.extensionBytes > MAX_CHUNK_EXTENSION_BYTES
      ) {
        throw this.fail('chunk-extension-too-large');
      }
      switch (state) {
        case S_CHUNK_SIZE: {
          const h = HEX[c]!;
          if (h === 255) throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-size');
          this.remaining = h;
          this.chunkDigits = 1;
          state = S_CHUNK_SIZE_MORE;
          break;
        }
        case S_CHUNK_SIZE_MORE: {
          const h = HEX[c]!;
          if (h !== 255) {
            this.remaining = this.remaining * 16 + h;
            if (++this.chunkDigits > MAX_CHUNK_SIZE_DIGITS || this.remaining > Number.MAX_SAFE_INTEGER) {
              throw this.fail('bad-chunk-size');
            }
          } else if (c === CR) {
            state = S_CHUNK_SIZE_LF;
          } else if (c === 59) {
            if (++this.extensionBytes > MAX_CHUNK_EXTENSION_BYTES) throw this.fail('chunk-extension-too-large');
            state = S_EXT_NAME_START;
          } else {
            throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-size');
          }
          break;
        }
        case S_EXT_NAME_START:
          if (TCHAR[c] !== 1) throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          state = S_EXT_NAME;
          break;
        case S_EXT_NAME:
          if (TCHAR[c] === 1) break;
          if (c === 61) state = S_EXT_VALUE_START;
          else if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          break;
        case S_EXT_VALUE_START:
          if (c === 34) state = S_EXT_QUOTED;
          else if (TCHAR[c] === 1) state = S_EXT_VALUE;
          else throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          break;
        case S_EXT_VALUE:
          if (TCHAR[c] === 1) break;
          if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          break;
        case S_EXT_QUOTED:
          // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
          if (c === 34) state = S_EXT_QUOTED_DONE;
          else if (c === 92) state = S_EXT_QUOTED_PAIR;
          else if (!((c >= SP && c !== 127) || c === HTAB))
            throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          break;
        case S_EXT_QUOTED_PAIR:
          if (!((c >= SP && c !== 127) || c === HTAB)) throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          state = S_EXT_QUOTED;
          break;
        case S_EXT_QUOTED_DONE:
          if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else throw this.fail(c === LF ? 'bare-lf' : 'bad-chunk-extension');
          break;
        default: {
          // S_CHUNK_SIZE_LF
          if (c !== LF) throw this.fail('bare-cr');
          pos++;
          if (this.remaining === 0) {
            this.state = S_TRAILERS;
            this.sectionBytes = 0;
            this.lineLen = 0;
          } else {
            this.state = S_CHUNK_DATA;
          }
          return pos;
        }
      }
      pos++;
    }
    this.state = state;
    return pos;
  }
}
