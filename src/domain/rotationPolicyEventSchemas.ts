import { z } from 'zod';
import { custodian, namespace } from './eventFields.js';

/**
 * The schemas of the rotation policy stream's events (`<prefix>policies`,
 * src/domain/decideRotationPolicy.ts). Apart from events.ts, which assembles every family into the
 * one table stored events are parsed by, so each family's file holds only its own.
 */

/** Whose rotation policy: one scope's, the default of every scope without one, or the system key's. */
const rotationPolicyTarget = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('scope'), custodian, namespace }),
  z.strictObject({ kind: z.literal('default') }),
  z.strictObject({ kind: z.literal('system') }),
]);
/** A policy's durations: whole milliseconds, 1 s to 10 years (what `--period 90d` parses to). */
const policyDuration = z
  .number()
  .int()
  .min(1000)
  .max(3650 * 86_400_000);

export const rotationPolicyEventSchemas = {
  /**
   * A rotation policy (stream `<prefix>policies`, docs/audit.md): rotate the target's ACTIVE key
   * once it has been ACTIVE for `periodMs`, and (scopes) disable INACTIVE keys after
   * `disableInactiveAfterMs`. Setting it again replaces it; who and why are the event's metadata.
   */
  RotationPolicySet: z.strictObject({
    target: rotationPolicyTarget,
    periodMs: policyDuration,
    disableInactiveAfterMs: policyDuration.nullable(),
  }),
  /** The target has no policy of its own any more (a scope then follows the default, if any). */
  RotationPolicyCleared: z.strictObject({ target: rotationPolicyTarget }),
} as const;
