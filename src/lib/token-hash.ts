import { hash, timingSafeEqual } from 'node:crypto';

/**
 * Tokens carry 256 random bits, so a plain SHA-256 is a safe one-way lookup key for them. One-shot:
 * no native Hash object per call for the garbage collector to finalize (every agent request hashes
 * its key; see docs/benchmarks.md).
 */
export const hashToken = (token: string): string => hash('sha256', token, 'hex');

/** Constant-time comparison; texts of different lengths are compared padded, so length is not leaked either. */
export const constantTimeEqual = (a: string, b: string): boolean => {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length === right.length) return timingSafeEqual(left, right);
  const length = Math.max(left.length, right.length);
  const paddedLeft = Buffer.alloc(length);
  const paddedRight = Buffer.alloc(length);
  left.copy(paddedLeft);
  right.copy(paddedRight);
  timingSafeEqual(paddedLeft, paddedRight);
  return false;
};
