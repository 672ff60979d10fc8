import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERROR_CATALOGUE, errorBody, InfergateError, toInfergateError, type ErrorCode } from '../../../shared/errors.ts';

const CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

describe('the catalogue', () => {
  test('is not empty', () => {
    assert.ok(CODES.length > 0);
  });

  test('every code has a client (4xx) or server (5xx) error status', () => {
    for (const code of CODES) {
      const { status } = ERROR_CATALOGUE[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`);
    }
  });

  test('every code is prefixed by who raises it and has a summary', () => {
    for (const code of CODES) {
      assert.match(code, /^(ERR|WK_ERR|GW_ERR)_[A-Z0-9_]+$/, code);
      assert.ok(ERROR_CATALOGUE[code].summary.trim().length > 0, `${code} has no summary`);
    }
  });
});

describe('InfergateError', () => {
  test('takes its status from the catalogue and keeps code, message and headers', () => {
    const err = new InfergateError('WK_ERR_QUEUE_FULL', 'queue is full', { 'Retry-After': '1' });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'InfergateError');
    assert.equal(err.code, 'WK_ERR_QUEUE_FULL');
    assert.equal(err.status, 503);
    assert.equal(err.message, 'queue is full');
    assert.deepEqual(err.headers, { 'Retry-After': '1' });
  });

  test('status follows the code for every catalogue entry', () => {
    for (const code of CODES) assert.equal(new InfergateError(code, 'x').status, ERROR_CATALOGUE[code].status, code);
  });

  test('has no extra headers by default', () => {
    assert.deepEqual(new InfergateError('ERR_NOT_FOUND', 'no such route').headers, {});
  });
});

describe('errorBody', () => {
  test('is {error, code, request_id}, with error a string as V2 and TF clients expect', () => {
    const err = new InfergateError('WK_ERR_BAD_TENSOR', "input 'x': bad");
    assert.deepEqual(errorBody(err, 'req-1'), { error: "input 'x': bad", code: 'WK_ERR_BAD_TENSOR', request_id: 'req-1' });
  });

  test('leaves request_id out when there is none', () => {
    const body = errorBody(new InfergateError('ERR_BAD_JSON', 'bad'), undefined);
    assert.deepEqual(body, { error: 'bad', code: 'ERR_BAD_JSON' });
    assert.equal('request_id' in body, false);
  });
});

describe('toInfergateError', () => {
  test('passes an InfergateError through unchanged', () => {
    const err = new InfergateError('WK_ERR_MODEL_NOT_FOUND', "model 'iris' is not served");
    assert.equal(toInfergateError(err), err);
  });

  test('turns anything else into a 500 whose message reveals nothing of the cause', () => {
    for (const thrown of [new Error('ECONNRESET at /srv/secret/path.ts:12'), new TypeError('x is undefined'), 'a string', undefined]) {
      const err = toInfergateError(thrown);
      assert.equal(err.code, 'ERR_INTERNAL');
      assert.equal(err.status, 500);
      assert.doesNotMatch(err.message, /ECONNRESET|secret|undefined|string/);
    }
  });
});
