import { nextTurn } from '../grants/bulk-batches.js';

/** Elements stringified between two turns of the event loop: a millisecond or so of work. */
const perTurn = 500;

/**
 * The JSON text of an answer whose arrays can hold tens of thousands of elements (a large grant
 * import), built a few hundred elements at a time with a turn of the event loop between, so that
 * serializing it never stalls the other requests the way one `JSON.stringify` of 10 MB would. Each
 * element must already be the answer's allowlisted view (the route's schema is not applied to text).
 */
export const jsonInTurns = async (fields: Record<string, readonly unknown[]>): Promise<string> => {
  const parts: string[] = [];
  for (const [key, values] of Object.entries(fields)) {
    const elements: string[] = [];
    for (let start = 0; start < values.length; start += perTurn) {
      if (start > 0) await nextTurn();
      for (const value of values.slice(start, start + perTurn)) elements.push(JSON.stringify(value));
    }
    parts.push(`${JSON.stringify(key)}:[${elements.join(',')}]`);
  }
  return `{${parts.join(',')}}`;
};
