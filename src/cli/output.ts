/** What every command prints through: JSON for machines (`--json`), aligned text for people. */
export interface Output {
  json: boolean;
  /** A result: JSON as-is, or the text the command renders. */
  result(value: unknown, text: () => string): void;
  /** Progress and notes: to stderr, never with --json, so stdout stays parseable. */
  info(message: string): void;
}

export const createOutput = (
  json: boolean,
  streams: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
): Output => ({
  json,
  result(value, text) {
    streams.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
  },
  info(message) {
    if (!json) streams.stderr.write(`${message}\n`);
  },
});

/** A plain text table: a header row and aligned columns. */
export const table = (headers: string[], rows: (string | number | null | undefined)[][]): string => {
  const cells = [
    headers,
    ...rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
};

export const keyValues = (pairs: [string, unknown][]): string => {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs
    .map(
      ([key, value]) =>
        `${`${key}:`.padEnd(width + 2)}${Array.isArray(value) ? value.join(', ') || '-' : (value ?? '-')}`,
    )
    .join('\n');
};
