/**
 * Strict, incremental HTTP/1.x response parser for the router's raw-socket upstream clients (HTTP/1.1
 * keep-alive nodes and uWSGI nodes, which answer a uwsgi request with a raw HTTP/1.x response and close).
 *
 * Strictness follows llhttp's strict mode and http-hardening.md §1.1/§2.1/§2.3: status line exactly
 * `HTTP/1.0|HTTP/1.1 SP 3DIGIT [SP reason] CRLF`; CRLF only (bare LF / bare CR rejected); RFC 9110 token
 * names with no whitespace before the colon; no obs-fold; no CTL (but HTAB) or DEL in values; one strict
 * Content-Length; Transfer-Encoding exactly `chunked` (HTTP/1.1 only) and never with Content-Length; strict
 * chunk sizes, extensions (bounded) and terminators. Every violation throws an UpstreamProtocolError
 * (SY_UPSTREAM_BAD_RESPONSE) whose `reason` names the rule; the parser is then dead until reset().
 *
 * Where llhttp (Node 20) and this parser differ, this one is stricter (Transfer-Encoding other than
 * `chunked`, DEL or CTL in the reason, leading CR/LF before the status line, empty chunk-extension values,
 * framing fields in trailers), except that HTAB counts as whitespace around every value as RFC 9110 OWS
 * says (llhttp does not: `chunked<HTAB>` makes it read until EOF), and that `Connection: close` anywhere
 * wins over `keep-alive`.
 *
 * Performance contract. Fast path, when a whole head is at the start of a chunk: one latin1 decode of at
 * most 8 KiB, one anchored regex that both finds and validates the whole head natively (no regex per
 * field), then fields are split with indexOf; the only allocations are the head object, the flat
 * rawHeaders array and its strings. Otherwise (split, oversized or invalid heads) an exact line parser
 * runs: it parses lines as they complete and copies only the incomplete line, into a per-parser buffer
 * bounded by maxHeaderSize. The regex accepts a subset of what the exact parser accepts, and a line is
 * judged only once complete and within the size limit, so the outcome, including which error is reported,
 * does not depend on how the bytes were split. Bodies are delivered as views of the input (no copy); no
 * closure is created per exchange.
 */

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

/** Why an upstream response was rejected. Stable identifiers: they label metrics and tests branch on them. */
export type UpstreamProtocolErrorReason =
  | 'bad-status-line'
  | 'bad-version'
  | 'bad-header-name'
  | 'bad-header-value'
  | 'obs-fold'
  | 'bare-lf'
  | 'bare-cr'
  | 'headers-too-large'
  | 'too-many-headers'
  | 'cl-and-te'
  | 'duplicate-content-length'
  | 'bad-content-length'
  | 'bad-transfer-encoding'
  | 'bad-chunk-size'
  | 'bad-chunk-extension'
  | 'bad-chunk-terminator'
  | 'chunk-extension-too-large'
  | 'trailers-too-large'
  | 'framing-in-trailers'
  | 'premature-eof'
  | 'excess-data';

/**
 * SY_UPSTREAM_BAD_RESPONSE: the node's response violates HTTP/1.x framing or syntax (map to 502; the
 * connection must be destroyed, never reused). Not retryable: the node already received the request.
 * The parser throws every reason except 'excess-data', which callers raise themselves for bytes left over
 * after a complete keep-alive response.
 */
export class UpstreamProtocolError extends Error {
  readonly code = 'SY_UPSTREAM_BAD_RESPONSE' as const;
  readonly source = 'router' as const;
  readonly retryable = false;
  readonly reason: UpstreamProtocolErrorReason;
  constructor(reason: UpstreamProtocolErrorReason, message = `malformed upstream response: ${reason}`) {
    super(message);
    this.name = 'UpstreamProtocolError';
    this.reason = reason;
  }
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
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * A whole, syntactically valid head (status line, field lines, empty line), anchored at 0. It accepts a
 * strict subset of what the exact line parser accepts (same character sets), so a match lets the fast path
 * split the head with indexOf and skip per-character checks; anything else, including a head that is only
 * incomplete, goes through the exact parser, which names the error. Linear: no two parts can match the same
 * character.
 */
const VALID_HEAD =
  /HTTP\/1\.[01] [1-9][0-9][0-9](?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n/y;
/** Bytes of a chunk decoded for the fast path; longer heads take the exact path. */
const FAST_HEAD_WINDOW = 8192;
const EMPTY = Buffer.alloc(0);

/** RFC 9110 tchar: 1 for "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
const TCHAR = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[ch.charCodeAt(0)] = 1;
}
/** Hex digit values; 255 = not a hex digit. */
const HEX = new Uint8Array(256).fill(255);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

/**
 * The reason for an unexpected character at `i` of a head line: a CR not followed by LF is a bare CR, an LF
 * reached while scanning a line is a bare LF (a CRLF would have stopped the scan at the CR), else `fallback`.
 */
function lineFault(s: string, i: number, fallback: UpstreamProtocolErrorReason): UpstreamProtocolErrorReason {
  const c = s.charCodeAt(i);
  if (c === LF) return 'bare-lf';
  if (c === CR && s.charCodeAt(i + 1) !== LF) return 'bare-cr';
  return fallback;
}

/** ASCII case-insensitive comparison of s[at, at + lower.length) with a lowercase letters-and-dashes literal. */
function equalsLower(s: string, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    if ((s.charCodeAt(at + k) | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** Why a status line that does not start with `HTTP/1.0 ` or `HTTP/1.1 ` is wrong. */
function versionFault(s: string, p: number): UpstreamProtocolErrorReason {
  const prefix = 'HTTP/';
  for (let k = 0; k < prefix.length; k++) {
    if (s.charCodeAt(p + k) !== prefix.charCodeAt(k)) return lineFault(s, p + k, 'bad-status-line');
  }
  let j = p + 5;
  let c = s.charCodeAt(j);
  while ((c >= 48 && c <= 57) || c === 46) c = s.charCodeAt(++j);
  const version = s.slice(p + 5, j);
  return version === '1.1' || version === '1.0' ? lineFault(s, j, 'bad-status-line') : 'bad-version';
}

/**
 * One parser per upstream connection, reused across keep-alive exchanges: reset(method) before each
 * exchange, then execute() every chunk read, and finish() when the peer closes. Not re-entrant; a handler
 * may call reset() from a callback (execute then returns at once), and an exception thrown by a handler
 * propagates unchanged and leaves the parser unusable until reset().
 */
export class ResponseParser {
  private readonly handler: ResponseParserHandler;
  private readonly maxHeaderSize: number;
  private readonly maxHeaderCount: number;

  private state: number = S_HEAD;
  private error: UpstreamProtocolError | null = null;
  /** Bumped by reset(): a callback that reset the parser makes execute() stop. */
  private generation = 0;
  private headMethod = false;
  private gotHead = false;

  // Head / trailer section collection. Only the incomplete line is buffered.
  private lineBuf: Buffer = EMPTY;
  private lineLen = 0;
  /** Bytes of the current section in complete lines. */
  private sectionBytes = 0;
  private sectionDone = false;

  // The head being parsed.
  private statusSeen = false;
  private statusCode = 0;
  private reason = '';
  private httpMinor: 0 | 1 = 1;
  private rawHeaders: string[] = [];
  private headerCount = 0;
  private contentLength = -1;
  private chunked = false;
  private connectionClose = false;
  private connectionKeepAlive = false;

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
    this.handler = handler;
    this.maxHeaderSize = maxHeaderSize;
    this.maxHeaderCount = maxHeaderCount;
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

  private fail(reason: UpstreamProtocolErrorReason): UpstreamProtocolError {
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

  /** Per-head state, at the start of each exchange and after each informational head. */
  private beginHead(): void {
    this.sectionBytes = 0;
    this.statusSeen = false;
    this.statusCode = 0;
    this.reason = '';
    this.httpMinor = 1;
    this.rawHeaders = [];
    this.headerCount = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
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
   * Consume head or trailer-section bytes from chunk[pos, len). Sets sectionDone and returns the offset after
   * the empty line when the section ends; otherwise consumes everything. A line is parsed only once it is
   * complete and ends within the size limit, so the result does not depend on where the input was split.
   */
  private collect(chunk: Buffer, pos: number, len: number, trailer: boolean): number {
    const limit = this.maxHeaderSize;
    while (pos < len) {
      if (this.lineLen > 0) {
        // Complete the buffered line.
        const lf = chunk.indexOf(LF, pos);
        const stop = lf === -1 ? len : lf + 1;
        if (this.sectionBytes + this.lineLen + (stop - pos) > limit) throw this.tooLarge(trailer);
        this.appendLine(chunk, pos, stop);
        pos = stop;
        if (lf === -1) break;
        const line = this.lineBuf.toString('latin1', 0, this.lineLen);
        this.sectionBytes += this.lineLen;
        this.lineLen = 0;
        if (this.parseLines(line, trailer) !== -1) {
          this.sectionDone = true;
          return pos;
        }
        continue;
      }
      const room = limit - this.sectionBytes;
      if (!trailer && this.sectionBytes === 0) {
        // Fastest path: a whole valid head at the start of this chunk.
        const avail = len - pos;
        const n = Math.min(avail, room, FAST_HEAD_WINDOW);
        const text = chunk.toString('latin1', pos, pos + n);
        VALID_HEAD.lastIndex = 0;
        if (VALID_HEAD.test(text)) {
          const end = VALID_HEAD.lastIndex;
          this.splitValidHead(text, end);
          this.sectionBytes = end;
          this.sectionDone = true;
          return pos + end;
        }
      }
      // Fast path: the rest of the section is in this chunk.
      let end = -1;
      if (chunk[pos] === CR && chunk[pos + 1] === LF) end = pos + 2;
      else {
        const e = chunk.indexOf(CRLFCRLF, pos);
        if (e !== -1) end = e + 4;
      }
      if (end !== -1 && end - pos <= room) {
        if (end - pos !== 2 || (!trailer && !this.statusSeen)) {
          this.parseLines(chunk.toString('latin1', pos, end), trailer);
        }
        this.sectionBytes += end - pos;
        this.sectionDone = true;
        return end;
      }
      // Split section: parse the complete lines that fit within the limit, buffer the incomplete rest.
      const lim = len - pos > room ? pos + room : len;
      const lastLf = lim > pos ? chunk.lastIndexOf(LF, lim - 1) : -1;
      if (lastLf >= pos) {
        const n = lastLf + 1 - pos;
        // Cannot end the section: its empty line would have been found above.
        this.parseLines(chunk.toString('latin1', pos, lastLf + 1), trailer);
        this.sectionBytes += n;
        pos = lastLf + 1;
      }
      if (pos < len) {
        if (this.sectionBytes + (len - pos) > limit) throw this.tooLarge(trailer);
        this.appendLine(chunk, pos, len);
        pos = len;
      }
    }
    // The section needs at least one more byte: fail now if that byte could not fit.
    if (this.sectionBytes + this.lineLen >= limit) throw this.tooLarge(trailer);
    return pos;
  }

  private tooLarge(trailer: boolean): UpstreamProtocolError {
    return this.fail(trailer ? 'trailers-too-large' : 'headers-too-large');
  }

  private appendLine(chunk: Buffer, from: number, to: number): void {
    const need = this.lineLen + (to - from);
    if (need > this.lineBuf.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxHeaderSize, Math.max(256, need * 2)));
      this.lineBuf.copy(grown, 0, 0, this.lineLen);
      this.lineBuf = grown;
    }
    chunk.copy(this.lineBuf, this.lineLen, from, to);
    this.lineLen = need;
  }

  /**
   * Parse complete lines (each ending in LF). Returns the offset after the empty line that ends the section,
   * or -1 if `s` ends before it.
   */
  private parseLines(s: string, trailer: boolean): number {
    const end = s.length;
    let p = 0;
    while (p < end) {
      if (!trailer && !this.statusSeen) {
        p = this.parseStatusLine(s, p);
        continue;
      }
      const c = s.charCodeAt(p);
      if (c === CR && s.charCodeAt(p + 1) === LF) return p + 2;
      if (c === SP || c === HTAB) throw this.fail('obs-fold');
      p = this.parseFieldLine(s, p, trailer);
    }
    return -1;
  }

  private parseStatusLine(s: string, p: number): number {
    let minor: 0 | 1;
    if (s.startsWith('HTTP/1.1 ', p)) minor = 1;
    else if (s.startsWith('HTTP/1.0 ', p)) minor = 0;
    else throw this.fail(versionFault(s, p));
    const d1 = s.charCodeAt(p + 9) - 48;
    if (!(d1 >= 1 && d1 <= 9)) throw this.fail(lineFault(s, p + 9, 'bad-status-line'));
    const d2 = s.charCodeAt(p + 10) - 48;
    if (!(d2 >= 0 && d2 <= 9)) throw this.fail(lineFault(s, p + 10, 'bad-status-line'));
    const d3 = s.charCodeAt(p + 11) - 48;
    if (!(d3 >= 0 && d3 <= 9)) throw this.fail(lineFault(s, p + 11, 'bad-status-line'));
    let i = p + 12;
    let c = s.charCodeAt(i);
    let reason = '';
    if (c === SP) {
      const start = ++i;
      c = s.charCodeAt(i);
      // HTAB / SP / VCHAR / obs-text
      while ((c >= SP && c !== 127) || c === HTAB) c = s.charCodeAt(++i);
      reason =
        i - start === 2 && s.charCodeAt(start) === 79 && s.charCodeAt(start + 1) === 75 ? 'OK' : s.slice(start, i);
    }
    if (c !== CR || s.charCodeAt(i + 1) !== LF) throw this.fail(lineFault(s, i, 'bad-status-line'));
    this.statusSeen = true;
    this.statusCode = d1 * 100 + d2 * 10 + d3;
    this.reason = reason;
    this.httpMinor = minor;
    return i + 2;
  }

  /** Fields of a head that matched VALID_HEAD (ending at `end`): no syntax checks needed, only semantics. */
  private splitValidHead(s: string, end: number): void {
    let eol = s.indexOf('\r', 12);
    this.statusSeen = true;
    this.httpMinor = s.charCodeAt(7) === 49 ? 1 : 0;
    this.statusCode = (s.charCodeAt(9) - 48) * 100 + (s.charCodeAt(10) - 48) * 10 + (s.charCodeAt(11) - 48);
    this.reason = eol === 12 ? '' : eol === 15 && s.startsWith('OK', 13) ? 'OK' : s.slice(13, eol);
    let p = eol + 2;
    const last = end - 2;
    while (p < last) {
      if (++this.headerCount > this.maxHeaderCount) throw this.fail('too-many-headers');
      const colon = s.indexOf(':', p);
      eol = s.indexOf('\r', colon);
      let valueStart = colon + 1;
      let c = s.charCodeAt(valueStart);
      while (c === SP || c === HTAB) c = s.charCodeAt(++valueStart);
      let valueEnd = eol;
      c = s.charCodeAt(valueEnd - 1);
      while (valueEnd > valueStart && (c === SP || c === HTAB)) c = s.charCodeAt(--valueEnd - 1);
      this.addField(s, p, colon, valueStart, valueEnd);
      p = eol + 2;
    }
  }

  /** Framing semantics of one header field, then record it. */
  private addField(s: string, p: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    const nameLength = nameEnd - p;
    if (nameLength === 14 && equalsLower(s, p, 'content-length')) this.onContentLength(s, valueStart, valueEnd);
    else if (nameLength === 17 && equalsLower(s, p, 'transfer-encoding'))
      this.onTransferEncoding(s, valueStart, valueEnd);
    else if (nameLength === 10 && equalsLower(s, p, 'connection')) this.onConnection(s, valueStart, valueEnd);
    this.rawHeaders.push(s.slice(p, nameEnd), s.slice(valueStart, valueEnd));
  }

  /** One `name: value CRLF` line starting at p; returns the next line's offset. Trailer fields are dropped. */
  private parseFieldLine(s: string, p: number, trailer: boolean): number {
    if (!trailer && ++this.headerCount > this.maxHeaderCount) throw this.fail('too-many-headers');
    let i = p;
    let c = s.charCodeAt(i);
    while (TCHAR[c] === 1) c = s.charCodeAt(++i);
    if (c !== 58 || i === p) throw this.fail(lineFault(s, i, 'bad-header-name'));
    const nameEnd = i;
    c = s.charCodeAt(++i);
    while (c === SP || c === HTAB) c = s.charCodeAt(++i);
    const valueStart = i;
    let valueEnd = i;
    for (;;) {
      if (c > SP) {
        if (c === 127) break;
        valueEnd = ++i;
        c = s.charCodeAt(i);
      } else if (c === SP || c === HTAB) {
        c = s.charCodeAt(++i);
      } else {
        break;
      }
    }
    if (c !== CR || s.charCodeAt(i + 1) !== LF) throw this.fail(lineFault(s, i, 'bad-header-value'));
    if (!trailer) {
      this.addField(s, p, nameEnd, valueStart, valueEnd);
    } else if (
      // Framing fields may not appear in trailers (RFC 9110 §6.5.1); llhttp rejects a trailer Content-Length.
      (nameEnd - p === 14 && equalsLower(s, p, 'content-length')) ||
      (nameEnd - p === 17 && equalsLower(s, p, 'transfer-encoding'))
    ) {
      throw this.fail('framing-in-trailers');
    }
    return i + 2;
  }

  /** Content-Length: 1*DIGIT <= 2^53-1, at most once, never with Transfer-Encoding. */
  private onContentLength(s: string, start: number, end: number): void {
    if (this.contentLength !== -1) throw this.fail('duplicate-content-length');
    if (this.chunked) throw this.fail('cl-and-te');
    if (start === end) throw this.fail('bad-content-length');
    let n = 0;
    for (let i = start; i < end; i++) {
      const d = s.charCodeAt(i) - 48;
      if (!(d >= 0 && d <= 9)) throw this.fail('bad-content-length');
      n = n * 10 + d;
      if (n > Number.MAX_SAFE_INTEGER) throw this.fail('bad-content-length');
    }
    this.contentLength = n;
  }

  /** Transfer-Encoding: exactly one field whose value is `chunked`; HTTP/1.0 may not use it (RFC 9112 §6.1). */
  private onTransferEncoding(s: string, start: number, end: number): void {
    if (this.contentLength !== -1) throw this.fail('cl-and-te');
    if (this.chunked || this.httpMinor === 0 || end - start !== 7 || !equalsLower(s, start, 'chunked')) {
      throw this.fail('bad-transfer-encoding');
    }
    this.chunked = true;
  }

  /** Connection: comma-separated tokens; only `close` and `keep-alive` matter here. */
  private onConnection(s: string, start: number, end: number): void {
    let i = start;
    while (i < end) {
      let c = s.charCodeAt(i);
      if (c === 44 || c === SP || c === HTAB) {
        i++;
        continue;
      }
      const tokenStart = i;
      while (i < end && c !== 44) c = s.charCodeAt(++i);
      let tokenEnd = i;
      c = s.charCodeAt(tokenEnd - 1);
      while (c === SP || c === HTAB) c = s.charCodeAt(--tokenEnd - 1);
      const n = tokenEnd - tokenStart;
      if (n === 5 && equalsLower(s, tokenStart, 'close')) this.connectionClose = true;
      else if (n === 10 && equalsLower(s, tokenStart, 'keep-alive')) this.connectionKeepAlive = true;
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
