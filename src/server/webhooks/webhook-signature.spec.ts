import { createHmac } from 'node:crypto';
import { newWebhookSecret, signWebhook, verifyWebhookSignature } from './webhook-signature.js';

describe('webhook signatures', () => {
  const secret = 'whsec_test-secret-0123456789';
  const body = '{"id":"1","type":"confirmed"}';

  test('is the hex HMAC-SHA256 of "<timestamp>.<body>", computed independently', () => {
    const expected = createHmac('sha256', secret).update(`1793610000.${body}`).digest('hex');
    expect(signWebhook(secret, 1793610000, body)).toBe(`sha256=${expected}`);
  });

  test('verifies; a changed body, timestamp, secret or a stale timestamp does not', () => {
    const now = 1793610000;
    const signature = signWebhook(secret, now, body);
    expect(verifyWebhookSignature(secret, signature, String(now), body, { now })).toBe(true);
    expect(verifyWebhookSignature(secret, signature, String(now), body.replace('1', '2'), { now })).toBe(false);
    expect(verifyWebhookSignature(secret, signature, String(now + 1), body, { now })).toBe(false);
    expect(verifyWebhookSignature('whsec_other', signature, String(now), body, { now })).toBe(false);
    expect(verifyWebhookSignature(secret, signature, String(now), body, { now: now + 301 })).toBe(false);
    expect(verifyWebhookSignature(secret, undefined, String(now), body, { now })).toBe(false);
  });

  test('generated secrets are long and distinct', () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(newWebhookSecret()).not.toBe(a);
  });
});
