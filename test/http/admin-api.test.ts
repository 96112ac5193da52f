import { adminApiContract } from '../contracts/admin-api-contract.js';
import { describeOnEveryStore } from '../helpers/stores.js';

describeOnEveryStore('admin API', (store) => adminApiContract(store.fresh));
