import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseParser } from '../../src/client/sseParser.js';

describe('SseParser', () => {
  it('dispatches on a blank line, keeps the last id, skips comments (heartbeats)', () => {
    const p = new SseParser();
    assert.deepEqual(p.push(': heartbeat\n\nid: 7\nevent: KeyManagementEnabled\ndata: {"a":1}\n\n'), [
      { id: '7', event: 'KeyManagementEnabled', data: '{"a":1}' },
    ]);
    assert.deepEqual(p.push('data: x\n\n'), [{ id: '7', event: 'message', data: 'x' }]);
    assert.equal(p.lastEventId, '7');
  });

  it('joins data lines, takes LF, CRLF and CR, and a CRLF split across chunks', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data: a\r'), []);
    assert.deepEqual(p.push('\ndata: b\rdata:c\n\r\n'), [
      { id: undefined, event: 'message', data: 'a\nb\nc' },
    ]);
  });

  it('decodes UTF-8 split inside a character; an event without data is not dispatched', () => {
    const p = new SseParser('3');
    const bytes = Buffer.from('data: café\n\n');
    const cut = bytes.indexOf(0xc3) + 1;
    assert.deepEqual(p.push(bytes.subarray(0, cut)), []);
    assert.deepEqual(p.push(bytes.subarray(cut)), [{ id: '3', event: 'message', data: 'café' }]);
    assert.deepEqual(p.push('id: 9\nevent: x\n\n'), []);
    assert.equal(p.lastEventId, '9');
  });
});
