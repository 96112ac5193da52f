/** The policy engine: documents, and the pure evaluation the decision point calls. No storage here. */
export * from './policy-types.js';
export {
  parsePolicyDocument,
  validatePolicyDocument,
  loadPolicyDocument,
  type PolicyParseResult,
} from './policy-document.js';
export { withinTimeWindow, wallClock, canonicalTimeZone } from './time-window.js';
export { parseCidr, formatCidr, normaliseAddress, addressMatcher, type AddressMatcher } from './ip-match.js';
export { clientAddress, parseTrustedProxies } from './client-address.js';
export {
  createMemoryCounters,
  windowOf,
  type CounterRequirement,
  type CounterResult,
  type CounterWindow,
  type CountersPort,
  type CounterUsage,
} from './counters.js';
export { createStoreCounters, type StoreCounters } from './store-counters.js';
export {
  createCountryLookup,
  bundledCountryDatabase,
  lazyCountryLookup,
  type CountryLookup,
} from './country-lookup.js';
export {
  createPolicyEvaluator,
  type ApprovalQuery,
  type ApprovalsPort,
  type PolicyDecision,
  type PolicyEvaluator,
  type PolicyEvaluatorDeps,
  type PolicyRef,
  type RuleVerdict,
} from './evaluate-policies.js';
export { policyRefusal } from './policy-refusal.js';
