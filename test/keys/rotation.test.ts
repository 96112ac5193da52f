import { describeOnEveryStore } from '../helpers/stores.js';
import { rotationContract } from './rotation-contract.js';

describeOnEveryStore('platform key rotation', (store) => rotationContract(store.fresh));
