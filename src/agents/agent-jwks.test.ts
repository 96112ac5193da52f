import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { validatePublicJwks } from './agent-jwks.js';

const keyPair = async (alg: 'ES256' | 'RS256' | 'EdDSA') => {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
};

describe('registered public keys', () => {
  it('accepts EC P-256, Ed25519 and RSA public keys, as a set or one key, reduced to public members', async () => {
    const ec = await keyPair('ES256');
    const ed = await keyPair('EdDSA');
    const rsa = await keyPair('RS256');
    const result = await validatePublicJwks({
      keys: [
        { ...ec.publicJwk, kid: 'ec', ext: true, key_ops: ['verify'] },
        { ...ed.publicJwk, kid: 'ed' },
        { ...rsa.publicJwk, kid: 'rsa', alg: 'PS256' },
      ],
    });
    expect(result.keys.map((k) => k.kid)).toEqual(['ec', 'ed', 'rsa']);
    expect(result.keys[0]).toEqual({ ...ec.publicJwk, kid: 'ec' });
    expect(await validatePublicJwks(ec.publicJwk)).toEqual({ keys: [ec.publicJwk] });
  });

  it('refuses private keys of every type, naming the members, and symmetric keys', async () => {
    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      const { privateJwk } = await keyPair(alg);
      await expect(validatePublicJwks({ keys: [privateJwk] })).rejects.toThrow(
        /private or symmetric key material \("d"/,
      );
    }
    await expect(validatePublicJwks({ kty: 'oct', k: 'c2VjcmV0' })).rejects.toThrow(/"k"/);
  });

  it('refuses weak, unsupported, mislabelled or duplicate keys', async () => {
    const ec = await keyPair('ES256');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    await expect(validatePublicJwks(weak)).rejects.toThrow(/2048 bits/);
    await expect(validatePublicJwks({ ...ec.publicJwk, alg: 'HS256' })).rejects.toThrow(/signs ES256/);
    await expect(validatePublicJwks({ ...ec.publicJwk, use: 'enc' })).rejects.toThrow(/"use" must be "sig"/);
    await expect(validatePublicJwks({ ...ec.publicJwk, x: 'AAAA' })).rejects.toThrow(
      /not a valid EC public key/,
    );
    await expect(
      validatePublicJwks({
        keys: [
          { ...ec.publicJwk, kid: 'a' },
          { ...ec.publicJwk, kid: 'a' },
        ],
      }),
    ).rejects.toThrow(/same kid/);
    await expect(validatePublicJwks({ keys: [] })).rejects.toThrow(/1 to 10 keys/);
    await expect(validatePublicJwks('not a key')).rejects.toThrow(/JWK set/);
  });
});
