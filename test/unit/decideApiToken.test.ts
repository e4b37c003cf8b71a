import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ApiTokensView,
  apiTokensFromSnapshot,
  apiTokensToSnapshot,
  emptyApiTokensView,
  evolveApiTokens,
} from '../../projections/apiTokens.js';
import {
  type CreateApiToken,
  decideCreateApiToken,
  decideRevokeApiToken,
  MAX_TOKEN_GRANTS,
} from '../../src/domain/decideApiToken.js';
import { type DomainEvent, eventDataSchemas, type LedgerEvent } from '../../src/domain/events.js';
import type { Grant } from '../../src/domain/grants.js';
import { parseCustodian } from '../../src/domain/identities.js';
import { throwsCode } from '../helpers/domainFixtures.js';

const NOW = new Date('2026-12-03T08:00:00.000Z');
const TENANT = parseCustodian(Buffer.from('tenant-1').toString('base64'));
const ID = '0123456789abcdef';
const OTHER_ID = 'fedcba9876543210';
const HASH = 'a'.repeat(64);

function command(overrides: Partial<CreateApiToken> = {}): CreateApiToken {
  const grants: Grant[] = [
    { role: 'encrypt', custodians: TENANT },
    { role: 'audit', custodians: '*' },
  ];
  return { tokenId: ID, principal: 'app-1', grants, hash: HASH, expiresAt: null, ...overrides };
}

/** The events as the store hands them back, folded by the projection (actor and time in metadata). */
function given(...events: DomainEvent[]): ApiTokensView {
  let view = emptyApiTokensView();
  events.forEach((event, i) => {
    const parsed = eventDataSchemas[event.type].safeParse(event.data);
    assert.ok(parsed.success, `${event.type} fits its schema: ${parsed.error?.message}`);
    const recorded = {
      ...event,
      meta: {
        schemaVersion: 1,
        actor: `admin-${i}`,
        reason: null,
        correlationId: `c${i}`,
        causationId: null,
        occurredAt: new Date(NOW.getTime() + i * 1000).toISOString(),
      },
      streamName: 'kl-tokens',
      revision: BigInt(i),
      position: BigInt(i + 1),
    } as LedgerEvent;
    view = evolveApiTokens(view, recorded);
  });
  return view;
}

describe('decideCreateApiToken', () => {
  it('given no tokens, when one is created, then ApiTokenCreated records principal, grants as written, hash and expiry', () => {
    const expiresAt = new Date('2027-03-03T00:00:00.000Z');
    const events = decideCreateApiToken(given(), command({ expiresAt }), NOW);
    assert.deepEqual(events, [
      {
        type: 'ApiTokenCreated',
        data: {
          tokenId: ID,
          principal: 'app-1',
          grants: [`encrypt:${TENANT}`, 'audit:*'],
          hash: HASH,
          expiresAt: '2027-03-03T00:00:00.000Z',
        },
      },
    ]);
    const view = given(...events);
    const token = view.tokens.get(ID);
    assert.deepEqual(token?.grants, command().grants);
    assert.equal(token?.createdBy, 'admin-0');
    assert.equal(token?.revokedAt, null);
  });

  it('given no tokens, when a grant is given twice, then it is recorded once, in the order given', () => {
    const twice = command({ grants: [...command().grants, { role: 'audit', custodians: '*' }] });
    const [event] = decideCreateApiToken(given(), twice, NOW);
    assert.deepEqual(event.data.grants, [`encrypt:${TENANT}`, 'audit:*']);
  });

  it('when the principal is empty, too long or holds control characters, then ERR_INVALID_ARGUMENT', () => {
    for (const principal of ['', 'x'.repeat(129), 'app\n1', 'app\u00001', 'a\u202eb', 'app\u2028']) {
      throwsCode(() => decideCreateApiToken(given(), command({ principal }), NOW), 'ERR_INVALID_ARGUMENT');
    }
    // 128 characters (code points), spaces and non-ASCII letters are fine.
    for (const principal of ['x'.repeat(128), 'CI pipeline', 'dépôt-ü', '🔑'.repeat(128)]) {
      assert.equal(decideCreateApiToken(given(), command({ principal }), NOW).length, 1, principal);
    }
  });

  it('when there is no grant, or too many, then ERR_INVALID_ARGUMENT', () => {
    throwsCode(() => decideCreateApiToken(given(), command({ grants: [] }), NOW), 'ERR_INVALID_ARGUMENT');
    const many: Grant[] = Array.from({ length: MAX_TOKEN_GRANTS + 1 }, (_, i) => ({
      role: 'read',
      custodians: parseCustodian(Buffer.from(`t${i}`).toString('base64')),
    }));
    throwsCode(() => decideCreateApiToken(given(), command({ grants: many }), NOW), 'ERR_INVALID_ARGUMENT');
  });

  it('when the expiry is now or past, then ERR_INVALID_ARGUMENT', () => {
    for (const expiresAt of [NOW, new Date(NOW.getTime() - 1), new Date(Number.NaN)]) {
      throwsCode(() => decideCreateApiToken(given(), command({ expiresAt }), NOW), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('given a token, when another is created under its id, then the caller is told (TypeError): ids are fresh', () => {
    const state = given(...decideCreateApiToken(given(), command(), NOW));
    assert.throws(() => decideCreateApiToken(state, command(), NOW), TypeError);
    assert.throws(() => decideCreateApiToken(given(), command({ tokenId: 'XYZ' }), NOW), TypeError);
    assert.throws(() => decideCreateApiToken(given(), command({ hash: 'secret' }), NOW), TypeError);
  });
});

describe('decideRevokeApiToken', () => {
  const created = decideCreateApiToken(given(), command(), NOW);

  it('given a token, when revoked, then ApiTokenRevoked; the fold records when and by whom', () => {
    const events = decideRevokeApiToken(given(...created), ID);
    assert.deepEqual(events, [{ type: 'ApiTokenRevoked', data: { tokenId: ID } }]);
    const token = given(...created, ...events).tokens.get(ID);
    assert.equal(token?.revokedAt, new Date(NOW.getTime() + 1000).toISOString());
    assert.equal(token?.revokedBy, 'admin-1');
  });

  it('given no such token, when revoked, then ERR_TOKEN_NOT_FOUND', () => {
    throwsCode(() => decideRevokeApiToken(given(...created), OTHER_ID), 'ERR_TOKEN_NOT_FOUND', {
      tokenId: OTHER_ID,
    });
  });

  it('given a revoked token, when revoked again, then ERR_TOKEN_REVOKED', () => {
    const revoked = given(...created, ...decideRevokeApiToken(given(...created), ID));
    throwsCode(() => decideRevokeApiToken(revoked, ID), 'ERR_TOKEN_REVOKED', { tokenId: ID });
  });
});

describe('the apiTokens projection', () => {
  it('a snapshot gives back the same view; a snapshot of another shape is not used', () => {
    const created = decideCreateApiToken(given(), command(), NOW);
    const view = given(...created, ...decideRevokeApiToken(given(...created), ID));
    const restored = apiTokensFromSnapshot(JSON.parse(JSON.stringify(apiTokensToSnapshot(view))));
    assert.deepEqual(restored, view);
    assert.equal(apiTokensFromSnapshot({ version: 0, tokens: [] }), null);
  });

  it('the schema refuses a grant not as formatGrant writes it', () => {
    const data = { ...created().data, grants: ['encrypt:name=tenant-1'] };
    assert.equal(eventDataSchemas.ApiTokenCreated.safeParse(data).success, false);
    assert.equal(eventDataSchemas.ApiTokenCreated.safeParse({ ...data, grants: [] }).success, false);
  });
});

function created() {
  const [event] = decideCreateApiToken(given(), command(), NOW);
  return event;
}
