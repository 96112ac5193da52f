/** `token-vault/sdk`: the agent-side client. See docs/agents-quickstart.md. */
export {
  type AuthorizationRequired,
  createVaultClient,
  type GetCredentialOptions,
  isVaultClientError,
  type VaultClient,
  VaultClientError,
  type VaultClientErrorCode,
  type VaultClientOptions,
  type VaultCredential,
  type VaultFetchInit,
} from './vault-client.js';
