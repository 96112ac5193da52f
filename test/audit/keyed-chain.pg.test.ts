import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { keyedChainContract } from './keyed-chain-contract.js';

describePostgres('the keyed audit chain on PostgreSQL', () => {
  keyedChainContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
