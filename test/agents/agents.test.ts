import { describeOnEveryStore } from '../helpers/stores.js';
import { agentAdminContract } from './agent-admin-contract.js';
import { agentAuthContract } from './agent-auth-contract.js';

describeOnEveryStore('agent admin API', (store) => agentAdminContract(store.fresh));
describeOnEveryStore('agent authentication', (store) => agentAuthContract(store.fresh));
