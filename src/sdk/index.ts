// Public SDK surface (`taskgate/sdk`): the HTTP client, its error, and the wire types it speaks.
export { TaskgateClient, DEFAULT_BASE_URL, type ClientOptions, type RequestOptions, type PageOptions } from './client.js';
export { TaskgateError } from './errors.js';
export type {
  ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, CreateTenantBody, CreateTenantKeyBody, Me, Scope, TenantList, TenantView,
  UpdateTenantBody,
} from '../contract/auth.js';
export type { ErrorCode, ErrorEnvelope } from '../contract/errors.js';
