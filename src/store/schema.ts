import type { Generated } from 'kysely';

/**
 * Table shapes shared by both dialects. Timestamps are ISO-8601 UTC strings (they sort as text);
 * JSON columns are text. Nothing here holds a secret in the clear: `ciphertexts` and `wrapped_key`
 * are envelope-encrypted.
 */
export interface Database {
  vault_state: VaultStateTable;
  kek_versions: KekVersionTable;
  data_keys: DataKeyTable;
  credentials: CredentialTable;
  credential_versions: CredentialVersionTable;
  admin_tokens: AdminTokenTable;
}

/** Small key/value rows: `mode`, `key_job`. Values are JSON. */
export interface VaultStateTable {
  key: string;
  value: string;
  updated_at: string;
}

/** Platform-mode key-encryption keys, each wrapped by the root (master) key. */
export interface KekVersionTable {
  version: number;
  wrapped_key: string;
  created_at: string;
}

/** One data key per credential, wrapped by a KEK; `kek_ref` names it (`platform:3`, `webhook:kms-1`). */
export interface DataKeyTable {
  id: string;
  namespace: string;
  credential_id: string;
  wrapped_key: string;
  kek_ref: string;
  created_at: string;
  updated_at: string;
}

export interface CredentialTable {
  id: string;
  namespace: string;
  name: string;
  type: string;
  description: string;
  scopes: string;
  allowed_hosts: string;
  injection: string;
  status: string;
  expires_at: string | null;
  subject: string | null;
  data_key_id: string;
  current_version: number;
  created_at: string;
  updated_at: string;
}

/** Secret versions: `ciphertexts` is a JSON object field → envelope ciphertext. */
export interface CredentialVersionTable {
  credential_id: string;
  version: number;
  ciphertexts: string;
  created_at: string;
}

export interface AdminTokenTable {
  id: string;
  name: string;
  token_hash: string;
  is_root: Generated<number>;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}
