import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiTokenEventSchemas } from '../../src/domain/apiTokenEventSchemas.js';
import { cacheEventSchemas } from '../../src/domain/cacheEventSchemas.js';
import { checkpointEventSchemas } from '../../src/domain/checkpointEventSchemas.js';
import { eventDataSchemas, LEDGER_EVENT_TYPES } from '../../src/domain/events.js';
import { legacyReencryptionEventSchemas } from '../../src/domain/legacyReencryptionEventSchemas.js';
import { rewrapEventSchemas } from '../../src/domain/rewrapEventSchemas.js';
import { rotationPolicyEventSchemas } from '../../src/domain/rotationPolicyEventSchemas.js';
import { scopeEventSchemas } from '../../src/domain/scopeEventSchemas.js';
import { systemKeyEventSchemas } from '../../src/domain/systemKeyEventSchemas.js';

/**
 * events.ts spreads the families into one table: a type declared in two families would silently
 * take the later family's schema. Every type is declared once, and the table is exactly the
 * families' schemas.
 */
describe('event schema families', () => {
  const families = {
    scopeEventSchemas,
    cacheEventSchemas,
    systemKeyEventSchemas,
    rewrapEventSchemas,
    legacyReencryptionEventSchemas,
    apiTokenEventSchemas,
    rotationPolicyEventSchemas,
    checkpointEventSchemas,
  };

  it('declare every event type once, and the table holds each family’s own schema', () => {
    const declaredIn = new Map<string, string[]>();
    for (const [family, schemas] of Object.entries(families)) {
      for (const [type, schema] of Object.entries(schemas)) {
        declaredIn.set(type, [...(declaredIn.get(type) ?? []), family]);
        assert.equal(eventDataSchemas[type as keyof typeof eventDataSchemas], schema, type);
      }
    }
    const twice = [...declaredIn].filter(([, where]) => where.length > 1);
    assert.deepEqual(twice, []);
    assert.deepEqual([...declaredIn.keys()].sort(), [...LEDGER_EVENT_TYPES].sort());
  });
});
