import { describeOnEveryStore } from '../helpers/stores.js';
import { retrievalContract } from './retrieval-contract.js';

describeOnEveryStore('agent retrieval', (store) => retrievalContract(store.fresh));
