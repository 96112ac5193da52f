import { describeOnEveryStore } from '../helpers/stores.js';
import { accessCacheContract } from './access-cache-contract.js';
import { accessCacheScopeContract } from './access-cache-scope-contract.js';

describeOnEveryStore('access cache', (store) => accessCacheContract(store.fresh));
describeOnEveryStore('access cache scopes, two replicas on one database', (store) =>
  accessCacheScopeContract(store.fresh),
);
