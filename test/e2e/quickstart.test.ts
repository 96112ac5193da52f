import { quickstartContract } from '../contracts/quickstart-contract.js';
import { describeOnEveryStore } from '../helpers/stores.js';

describeOnEveryStore('quick start', (store) =>
  quickstartContract(async () => {
    const { databaseUrl, cleanup } = await store.fresh();
    const env: Record<string, string> = databaseUrl ? { TOKENVAULT_DATABASE_URL: databaseUrl } : {};
    return { env, cleanup };
  }),
);
