import { describeOnEveryStore } from '../helpers/stores.js';
import { webhookModeContract } from './webhook-mode-contract.js';

describeOnEveryStore('webhook mode', (store) => webhookModeContract(store.fresh));
