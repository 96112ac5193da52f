import type { Command } from 'commander';
import { type ApiClient, createApiClient, resolveClientSettings } from './api-client.js';
import { createOutput, type Output } from './output.js';

export interface CommandContext {
  api: ApiClient;
  out: Output;
  /** Reads all of standard input (for --secret-stdin). */
  readStdin(): Promise<string>;
}

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

/** Adds the options every client command shares. */
export const withClientOptions = (command: Command): Command =>
  command
    .option('--json', 'print JSON instead of text')
    .option('--addr <url>', 'vault address (env TOKENVAULT_ADDR; default http://127.0.0.1:8200)')
    .option('-n, --namespace <name>', 'namespace (env TOKENVAULT_NAMESPACE; default `default`)')
    .option('--data-dir <dir>', 'local data dir holding the root admin token (env TOKENVAULT_DATA_DIR)');

const readAll = async (stream: NodeJS.ReadableStream): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
};

export const contextFor = (command: Command, io: CliIo): CommandContext => {
  const options = command.optsWithGlobals<{
    json?: boolean;
    addr?: string;
    namespace?: string;
    dataDir?: string;
  }>();
  return {
    api: createApiClient(resolveClientSettings(options, io.env)),
    out: createOutput(Boolean(options.json), io),
    readStdin: () => readAll(io.stdin),
  };
};
