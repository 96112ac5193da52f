import type { KeyProvider, KeyProviderKind, WrappedKey } from '../crypto/key-provider.js';
import { refKind } from '../crypto/key-provider.js';
import type { PlatformKeyProvider } from '../crypto/platform-key-provider.js';
import { VaultError } from '../errors/vault-error.js';

export type { PlatformKeyProvider };

/** The providers this server has configuration for; the store says which one is active. */
export interface KeyProviders {
  platform?: PlatformKeyProvider | undefined;
  webhook?: KeyProvider | undefined;
}

export const providerFor = (providers: KeyProviders, kind: KeyProviderKind): KeyProvider => {
  const provider = providers[kind];
  if (!provider) {
    throw new VaultError(
      'key_provider_not_configured',
      kind === 'webhook'
        ? 'Webhook mode is not configured on this server: set TOKENVAULT_KMS_WEBHOOK_URL and TOKENVAULT_KMS_WEBHOOK_SECRET and restart.'
        : 'Platform mode is not configured on this server: set TOKENVAULT_MASTER_KEY or keep the generated key file, and restart.',
    );
  }
  return provider;
};

/** Unwraps keys that may sit under different providers, one batch per provider, keeping order. */
export const unwrapMany = async (providers: KeyProviders, keys: WrappedKey[]): Promise<Buffer[]> => {
  const result: Buffer[] = new Array(keys.length);
  const byKind = new Map<KeyProviderKind, number[]>();
  keys.forEach((key, index) => {
    const kind = refKind(key.ref);
    if (!kind)
      throw new VaultError('decryption_failed', `A data key has an unknown key reference "${key.ref}".`);
    byKind.set(kind, [...(byKind.get(kind) ?? []), index]);
  });
  for (const [kind, indexes] of byKind) {
    const opened = await providerFor(providers, kind).unwrap(indexes.map((i) => keys[i] as WrappedKey));
    indexes.forEach((keyIndex, i) => {
      result[keyIndex] = opened[i] as Buffer;
    });
  }
  return result;
};
