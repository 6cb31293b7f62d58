import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CLOSE_GOING_AWAY, closeFrame, FrameBoundaryTracker } from '../src/websocket-frame.js';

/** A frame as a server (unmasked) or client (masked) writes it. */
function frame(payloadLength: number, masked = false, opcode = 0x2): Buffer {
  const header: number[] = [0x80 | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (payloadLength < 126) header.push(maskBit | payloadLength);
  else if (payloadLength < 65536) header.push(maskBit | 126, payloadLength >> 8, payloadLength & 0xff);
  else {
    header.push(maskBit | 127, 0, 0, 0, 0);
    header.push((payloadLength >>> 24) & 0xff, (payloadLength >>> 16) & 0xff, (payloadLength >>> 8) & 0xff);
    header.push(payloadLength & 0xff);
  }
  if (masked) header.push(1, 2, 3, 4);
  return Buffer.concat([Buffer.from(header), Buffer.alloc(payloadLength, 0x61)]);
}

describe('WebSocket frame boundaries', () => {
  test('finds every boundary of 7-bit, 16-bit and 64-bit length frames, masked or not, fed byte by byte', () => {
    const frames = [frame(0), frame(5), frame(125, true), frame(126), frame(300, true), frame(70_000)];
    const stream = Buffer.concat(frames);
    const ends = new Set<number>();
    let offset = 0;
    for (const f of frames) ends.add((offset += f.length));
    const tracker = new FrameBoundaryTracker();
    for (let i = 0; i < stream.length; i++) {
      tracker.feed(stream, i, i + 1);
      assert.equal(tracker.atBoundary, ends.has(i + 1), `boundary after byte ${i + 1}`);
    }
    assert.equal(tracker.frames, frames.length);
  });

  test('stops at the first boundary when asked, whatever the chunking', () => {
    const stream = Buffer.concat([frame(10), frame(200), frame(3)]);
    const tracker = new FrameBoundaryTracker();
    tracker.feed(stream, 0, 4); // inside the first frame
    assert.equal(tracker.atBoundary, false);
    const cut = tracker.feed(stream, 4, stream.length, true);
    assert.equal(cut, 12);
    assert.equal(tracker.atBoundary, true);
    assert.equal(tracker.feed(stream, cut, stream.length, true), 12 + 204);
  });

  test('reports an untrackable 64-bit length as broken instead of guessing', () => {
    const tracker = new FrameBoundaryTracker();
    tracker.feed(Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    assert.equal(tracker.broken, true);
    assert.equal(tracker.atBoundary, false);
  });

  test('writes a 4-byte unmasked close frame carrying 1001, and a masked one for nodes', () => {
    assert.deepEqual([...closeFrame(CLOSE_GOING_AWAY)], [0x88, 0x02, 0x03, 0xe9]);
    const masked = closeFrame(CLOSE_GOING_AWAY, Buffer.from([9, 8, 7, 6]));
    assert.equal(masked.length, 8);
    assert.equal(masked[1], 0x82);
    assert.equal(((masked[6]! ^ 9) << 8) | (masked[7]! ^ 8), 1001);
  });
});
