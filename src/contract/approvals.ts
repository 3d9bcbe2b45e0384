// Wire schemas of the approval routes (PRODUCT.md §3 "Approvals"): the API validates and documents
// with them, the SDK is typed from them.
import { Type, type Static } from 'typebox';
import { ID_REGEX, Nullable } from './tasks.js';


export const ApprovalDecisionBody = Type.Object(
  {
    workflow_id: Type.String({ pattern: ID_REGEX }),
    approval_id: Type.String({ pattern: ID_REGEX }),
    approved: Type.Boolean(),
    feedback: Type.Optional(Type.String({ maxLength: 10_000 })),
    modified_action: Type.Optional(Type.Unknown()),
    approved_by: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ApprovalDecisionBody = Static<typeof ApprovalDecisionBody>;

export const ApprovalDecisionResponse = Type.Object({
  status: Type.String(), success: Type.Boolean(), message: Type.String(), workflow_id: Type.String(), approval_id: Type.String(),
});
export type ApprovalDecisionResponse = Static<typeof ApprovalDecisionResponse>;

export const ApprovalStatus = Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('denied'), Type.Literal('cancelled')]);
export type ApprovalStatus = Static<typeof ApprovalStatus>;

export const ApprovalListQuery = Type.Object(
  {
    status: Type.Optional(ApprovalStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

export const ApprovalView = Type.Object({
  approval_id: Type.String(),
  workflow_id: Type.String(),
  status: ApprovalStatus,
  message: Nullable(Type.String()),
  payload: Type.Unknown(),
  feedback: Nullable(Type.String()),
  modified_action: Type.Unknown(),
  decided_by: Nullable(Type.String()),
  requested_at: Nullable(Type.String()),
  timeout_at: Nullable(Type.String()),
  decided_at: Nullable(Type.String()),
});
export type ApprovalView = Static<typeof ApprovalView>;

/** A page of approvals, newest request first: `count` is the page's length, `has_more` whether a page follows it. */
export const ApprovalList = Type.Object({
  approvals: Type.Array(ApprovalView),
  count: Type.Integer(),
  has_more: Type.Boolean(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});
export type ApprovalList = Static<typeof ApprovalList>;
