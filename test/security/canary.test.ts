import { canaryContract, postgresRows, sqliteFiles } from '../contracts/canary-contract.js';
import { describeOnEveryStore } from '../helpers/stores.js';

describeOnEveryStore('a canary secret', (store) =>
  canaryContract(store.fresh, store.dialect === 'postgres' ? postgresRows : async (t) => sqliteFiles(t)),
);
