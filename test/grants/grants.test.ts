import { describeOnEveryStore } from '../helpers/stores.js';
import { grantContract } from './grant-contract.js';

describeOnEveryStore('grants', (store) => grantContract(store.fresh));
