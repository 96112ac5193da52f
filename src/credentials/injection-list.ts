import { VaultError } from '../errors/vault-error.js';
import {
  type CredentialType,
  defaultInjection,
  type Injection,
  type InjectionInput,
  validateInjection,
} from './credential-types.js';

/**
 * A credential's injections: one or several (an API key and its secret in two headers, a header and a
 * query parameter). Pure.
 *
 * Stored in the `injection` column as JSON: one injection as the object it always was (so every row
 * written before several were possible, and every single-injection row written since, reads the same
 * way everywhere), several as an array. The first is the credential's main injection: the one a
 * reveal grant renders the token type from (`Credential.injection`).
 */

export const maxInjections = 10;

/** The stored column's JSON, object or array, as a non-empty list. */
export const parseStoredInjections = (json: string): Injection[] => {
  const parsed = JSON.parse(json) as Injection | Injection[];
  return Array.isArray(parsed) ? parsed : [parsed];
};

/** The column's JSON: the object alone when there is one, so older readers still read it. */
export const storedInjections = (injections: readonly Injection[]): string =>
  JSON.stringify(injections.length === 1 ? injections[0] : injections);

/**
 * A credential's list: `injections` when it starts with `injection`, else `injection` alone — so an
 * object built with `injection` only (before lists, or `{ ...current, injection }`) means what it says.
 */
export const injectionsOf = (c: {
  injection: Injection;
  injections?: readonly Injection[] | undefined;
}): Injection[] =>
  c.injections?.[0] !== undefined && JSON.stringify(c.injections[0]) === JSON.stringify(c.injection)
    ? [...c.injections]
    : [c.injection];

/** The key two injections collide on: header names are case-insensitive, query and env names are not. */
const placeKey = (injection: Injection) =>
  `${injection.in}:${injection.in === 'header' ? injection.name.toLowerCase() : injection.name}`;

/**
 * Validates a list as the admin gave it: each injection as `validateInjection` does, at least one, at
 * most `maxInjections`, and no two into the same header, query parameter or variable (the second
 * would silently overwrite the first on the way out).
 */
export const validateInjections = (
  inputs: readonly InjectionInput[],
  type: CredentialType,
  fields: string[],
): Injection[] => {
  if (inputs.length === 0 || inputs.length > maxInjections) {
    throw new VaultError('invalid_injection', `Give between 1 and ${maxInjections} injections.`);
  }
  const injections = inputs.map((input) => validateInjection(input, type, fields));
  const seen = new Set<string>();
  for (const injection of injections) {
    const key = placeKey(injection);
    if (seen.has(key)) {
      throw new VaultError(
        'invalid_injection',
        `Two injections go into the same ${injection.in} "${injection.name}"; give each place once.`,
      );
    }
    seen.add(key);
  }
  return injections;
};

/** What an admin request says about injections: one (`injection`), several (`injections`), or nothing. */
export interface InjectionChoice {
  injection?: InjectionInput | undefined;
  injections?: InjectionInput[] | undefined;
}

/** The one list the request gives, or undefined when it gives none; both at once is refused. */
export const chosenInjections = (choice: InjectionChoice): InjectionInput[] | undefined => {
  if (choice.injection !== undefined && choice.injections !== undefined) {
    throw new VaultError(
      'invalid_injection',
      'Give either `injection` (one) or `injections` (several), not both.',
    );
  }
  return choice.injections ?? (choice.injection === undefined ? undefined : [choice.injection]);
};

/** The injections of a new credential: as given, else its type's default. */
export const injectionsForCreate = (
  choice: InjectionChoice,
  type: CredentialType,
  fields: string[],
): Injection[] =>
  validateInjections(chosenInjections(choice) ?? [defaultInjection(type, fields)], type, fields);

/**
 * The injections after an update: the new list when one is given, the current one checked again when
 * the secret's fields change (a template may name a field that is gone), else the current one.
 */
export const injectionsForUpdate = (
  choice: InjectionChoice,
  current: readonly Injection[],
  type: CredentialType,
  fields: string[],
  secretChanged: boolean,
): Injection[] => {
  const given = chosenInjections(choice);
  if (given !== undefined || secretChanged) return validateInjections(given ?? current, type, fields);
  return [...current];
};
