/**
 * A key provider wraps and unwraps data keys (DEKs) with a key-encryption key it controls.
 * Every wrapped DEK is stored next to its `ref` (`platform:3`, `webhook:kms-1`): the provider kind,
 * a colon, then the key id/version inside that provider. Calls are batched so a re-wrap of many
 * keys costs few round trips.
 */
export type KeyProviderKind = 'platform' | 'webhook';

export interface WrappedKey {
  ref: string;
  wrapped: string;
}

export interface KeyProvider {
  readonly kind: KeyProviderKind;
  /** Wraps each DEK with the provider's current key. Throws `key_provider_unavailable` when unreachable. */
  wrap(deks: Buffer[]): Promise<WrappedKey[]>;
  /** Unwraps DEKs, in order. Throws `decryption_failed` when one fails authentication. */
  unwrap(keys: WrappedKey[]): Promise<Buffer[]>;
  /** Proves the provider can wrap and unwrap right now (for `/readyz`). */
  check(): Promise<void>;
}

export const refKind = (ref: string): KeyProviderKind | undefined => {
  const kind = ref.slice(0, ref.indexOf(':'));
  return kind === 'platform' || kind === 'webhook' ? kind : undefined;
};
