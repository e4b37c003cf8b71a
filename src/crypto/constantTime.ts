import { timingSafeEqual } from 'node:crypto';

/** Constant-time equality of two strings of equal length (checksums, identities, MACs). */
export function constantTimeEqualStrings(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}
