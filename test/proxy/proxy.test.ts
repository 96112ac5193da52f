import { describeOnEveryStore } from '../helpers/stores.js';
import { proxyContract } from './proxy-contract.js';

describeOnEveryStore('HTTP proxy', proxyContract);
