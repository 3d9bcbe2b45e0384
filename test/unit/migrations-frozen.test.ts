// Shipped migrations are frozen: a database that applied one keeps what that file did, whatever
// the file says later (the runner records version numbers only). 0010 was once changed after it
// shipped, and databases migrated by the earlier file never got tenants.max_running (0014
// repairs it). A change to the schema goes in a new migration; a new migration adds its line here.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/storage/migrate.js';

/** sha256 of each shipped migration's text (line endings as LF). */
const SHIPPED: Record<string, string> = {
  '0001_init': 'b9b6f5b53f8662470d494922c21096354372d7195e53907a9e6b0b56e4b90f03',
  '0003_idempotency': 'bf7ca4963523d4effb2b91e20dbccca4d44fd8406eaff79e6aa4190b80042e0b',
  '0004_approvals': '085f02a03f6866e18e493cc7179b48110b11744f80173223f57f1ff483d31543',
  '0005_queue_plans': '63ceba4c5cb08713c7b1ab75e321d6286f1db8f73fd15d5a9900adf909e9cd29',
  '0006_lean_engine': '8c37b794a0cddd49254b9dda275ee10becc58122a6477a0971d98ed59804b250',
  '0007_c_collation_keys': '5f5a3fc41409081c6ac53f552645d15412348323f75c2abc9410b5b41493d866',
  '0008_tenant_definitions': 'd7088519e8b01fdac42eeb6a9027560e697b17e2582d7ec40e2787b0cfae75e1',
  '0009_approval_cancelled': '62c24e525ee5fb9099d7d698103091f5c4c48f1af9612f4f839bf4f78bfa787c',
  '0010_fair_claim': '30200d01085644e27c073389c772954e26e37d232cb26ad511a777e81734f788',
  '0011_fair_claim_plan': 'af787b8c95f60c70f3e877bc2e9e81255f5dc001bd7ad40cadfc461fb8813bfb',
  '0012_api_key_created_by': '259e5dfdb9b85334227bb1289be955760e26793176594827068abb455d9fc5f6',
  '0013_caps_slots': '18e2cb76ddc46565f1cab614023e3b6a1ab64da17f6ed8bc306bc765366c4e63',
  '0014_max_running_repair': '9da52029128ee9f463f08bedba310cf641156e3593aaa3818319851db9aec4bb',
};

describe('migrations', () => {
  it('shipped ones are never edited, and each one is listed here', () => {
    const now = Object.fromEntries(loadMigrations().map((m) => [m.name, createHash('sha256').update(m.sql.replace(/\r\n/g, '\n')).digest('hex')]));
    expect(now).toEqual(SHIPPED);
  });

  it('numbers are unique and only grow', () => {
    const versions = loadMigrations().map((m) => m.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });
});
