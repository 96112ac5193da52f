// Everything the bench takes from the vault's build (dist/), in one place: when a module moves or an
// export changes shape, this file is the one to adapt. `npm run bench` builds dist/ first.

export { auditChainStateKey, deriveChainKey, switchMac } from '../dist/audit/audit-keys.js';
export { createAuditService } from '../dist/audit/audit-service.js';
export { createAuditWriter } from '../dist/audit/audit-writer.js';
export { loadConfig } from '../dist/config/load-config.js';
export { toRow } from '../dist/credentials/credential-repo.js';
export { defaultInjection } from '../dist/credentials/credential-types.js';
export { encryptField, newDataKey } from '../dist/crypto/envelope.js';
export { loadRootKey } from '../dist/crypto/master-key.js';
export { createPlatformKeyProvider } from '../dist/crypto/platform-key-provider.js';
export { CredentialToken, RetrievalParams, RetrievalQuery } from '../dist/http/schemas/grant-schemas.js';
export { vaultStateRepo } from '../dist/keys/vault-state-repo.js';
export { systemClock } from '../dist/lib/clock.js';
export { newId } from '../dist/lib/ids.js';
export { createVault } from '../dist/main.js';
export { openStore } from '../dist/store/database.js';
