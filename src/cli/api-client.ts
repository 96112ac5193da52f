import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientSettings {
  addr: string;
  token: string | undefined;
  namespace: string | undefined;
}

export const defaultAddr = 'http://127.0.0.1:8200';

const isLoopback = (addr: string): boolean => {
  try {
    const host = new URL(addr).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
};

/**
 * Like Vault's CLI: TOKENVAULT_ADDR and TOKENVAULT_TOKEN; when no token is set and the vault is on
 * this machine, the root token the server wrote into its data dir.
 */
export const resolveClientSettings = (
  options: { addr?: string; namespace?: string; dataDir?: string },
  env: NodeJS.ProcessEnv = process.env,
): ClientSettings => {
  const addr = (options.addr ?? env.TOKENVAULT_ADDR ?? defaultAddr).replace(/\/+$/, '');
  let token = env.TOKENVAULT_TOKEN || undefined;
  if (!token && isLoopback(addr)) {
    const path = join(options.dataDir ?? env.TOKENVAULT_DATA_DIR ?? './.tokenvault', 'admin-token');
    if (existsSync(path)) token = readFileSync(path, 'utf8').trim();
  }
  return { addr, token, namespace: options.namespace ?? env.TOKENVAULT_NAMESPACE };
};

export const createApiClient = (settings: ClientSettings) => {
  const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (settings.token) headers.authorization = `Bearer ${settings.token}`;
    if (settings.namespace) headers['x-tokenvault-namespace'] = settings.namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${settings.addr}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ApiError(
        0,
        'connection_failed',
        `Cannot reach the vault at ${settings.addr} (${reason}). Is \`tokenvault serve\` running? Set TOKENVAULT_ADDR to point elsewhere.`,
      );
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ApiError(
        response.status,
        'bad_response',
        `The vault answered ${response.status} with a body that is not JSON.`,
      );
    }
    if (!response.ok) {
      const error = (
        parsed as { error?: { code?: string; message?: string; request_id?: string } } | undefined
      )?.error;
      let message = error?.message ?? `The vault answered ${response.status}.`;
      if (response.status === 401 && !settings.token) {
        message +=
          ' No token was found: set TOKENVAULT_TOKEN, or run on the vault’s machine with its --data-dir.';
      }
      throw new ApiError(response.status, error?.code ?? 'http_error', message, error?.request_id);
    }
    return parsed as T;
  };
  return {
    get: <T>(path: string) => request<T>('GET', path),
    post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, body),
    patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
    put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
    delete: <T>(path: string) => request<T>('DELETE', path),
  };
};

export type ApiClient = ReturnType<typeof createApiClient>;
