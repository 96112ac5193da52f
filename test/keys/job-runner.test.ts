import { jobRunnerContract } from '../contracts/job-runner-contract.js';
import { describeOnEveryStore } from '../helpers/stores.js';

describeOnEveryStore('key job runner', (store) => jobRunnerContract(store.fresh));
