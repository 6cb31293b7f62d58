/**
 * The head half of the response parser (response-parser.ts): collects a head or a trailer section and
 * validates it field by field, and derives the framing facts of a head (Content-Length, Transfer-Encoding,
 * Connection). Strictness (http-hardening.md §1.1/§2.1/§2.3): status line exactly
 * `HTTP/1.0|HTTP/1.1 SP 3DIGIT [SP reason] CRLF`; CRLF only; RFC 9110 token names with no whitespace before
 * the colon; no obs-fold; no CTL (but HTAB) or DEL in values; one strict Content-Length; Transfer-Encoding
 * exactly `chunked` (HTTP/1.1 only) and never with Content-Length; no framing fields in trailers. A
 * violation is reported through `fail(reason)`, which the parser implements (it marks itself dead).
 *
 * Performance contract. Fast path, when a whole head is at the start of a chunk: one latin1 decode of at
 * most 8 KiB, one anchored regex that both finds and validates the whole head natively (no regex per
 * field), then fields are split with indexOf; the only allocations are the flat rawHeaders array and its
 * strings. Otherwise (split, oversized or invalid heads) an exact line parser runs: it parses lines as they
 * complete and copies only the incomplete line, into a per-parser buffer bounded by maxHeaderSize. The
 * regex accepts a subset of what the exact parser accepts, and a line is judged only once complete and
 * within the size limit, so the outcome, including which error is reported, does not depend on how the
 * bytes were split. A base class rather than a component: the parser's own fields, no indirection.
 */
import type { UpstreamProtocolError, UpstreamProtocolErrorReason } from './errors.js';

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
export const TCHAR = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[ch.charCodeAt(0)] = 1;
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
 * Head and trailer-section state and parsing, shared by every exchange of one ResponseParser. Subclassed
 * only by ResponseParser, which owns the exchange state machine and calls `collect()` in its head and
 * trailer states, `beginHead()` before each head, and reads the head fields once `sectionDone`.
 */
export abstract class ResponseHeadParser {
  /** Bytes of a whole head (status line through the empty line), and of a trailer section. */
  protected readonly maxHeaderSize: number;
  /** Header fields per head. */
  protected readonly maxHeaderCount: number;

  // Head / trailer section collection. Only the incomplete line is buffered.
  private lineBuf: Buffer = EMPTY;
  protected lineLen = 0;
  /** Bytes of the current section in complete lines. */
  protected sectionBytes = 0;
  protected sectionDone = false;

  // The head being parsed.
  private statusSeen = false;
  protected statusCode = 0;
  protected reason = '';
  protected httpMinor: 0 | 1 = 1;
  protected rawHeaders: string[] = [];
  private headerCount = 0;
  protected contentLength = -1;
  protected chunked = false;
  protected connectionClose = false;
  protected connectionKeepAlive = false;

  /** Limits already validated by the parser. */
  constructor(maxHeaderSize: number, maxHeaderCount: number) {
    this.maxHeaderSize = maxHeaderSize;
    this.maxHeaderCount = maxHeaderCount;
  }

  /** Records `reason` as the parser's error, makes the parser dead until reset, and returns the error to throw. */
  protected abstract fail(reason: UpstreamProtocolErrorReason): UpstreamProtocolError;

  /** Per-head state, at the start of each exchange and after each informational head. */
  protected beginHead(): void {
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

  /**
   * Consume head or trailer-section bytes from chunk[pos, len). Sets sectionDone and returns the offset after
   * the empty line when the section ends; otherwise consumes everything. A line is parsed only once it is
   * complete and ends within the size limit, so the result does not depend on where the input was split.
   */
  protected collect(chunk: Buffer, pos: number, len: number, trailer: boolean): number {
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
}
