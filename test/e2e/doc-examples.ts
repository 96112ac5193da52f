/**
 * The fenced code blocks of the README and docs/, as a reader meets them. A block preceded by
 * `<!-- example: skip (why) -->` (other HTML comments, such as `<!-- prettier-ignore -->`, may sit
 * between) is a fragment or needs something a test cannot give; every other `js` block is run, and so
 * are the `sh` blocks of the quick starts.
 */
export interface DocBlock {
  /** `README.md:42`: where the block starts, for failure messages. */
  where: string;
  lang: 'js' | 'sh' | 'other';
  code: string;
  /** Why the block is not run, when it is marked so. */
  skip: string | undefined;
}

const fence = /^```(\S*)\s*$/;
const skipMarker = /^<!--\s*example:\s*skip\b\s*(.*?)\s*-->$/;
const htmlComment = /^<!--.*-->$/;

const langOf = (tag: string): DocBlock['lang'] => {
  if (['js', 'mjs', 'javascript'].includes(tag)) return 'js';
  if (['sh', 'bash', 'shell'].includes(tag)) return 'sh';
  return 'other';
};

/** The comment lines (and blank lines) right above line `index`, nearest first. */
const commentsAbove = (lines: string[], index: number): string[] => {
  const found: string[] = [];
  for (let i = index - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    if (!htmlComment.test(line)) break;
    found.push(line);
  }
  return found;
};

export const extractBlocks = (file: string, markdown: string): DocBlock[] => {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i] ?? '');
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    const marker = commentsAbove(lines, start)
      .map((line) => skipMarker.exec(line))
      .find((match) => match !== null);
    blocks.push({
      where: `${file}:${start + 1}`,
      lang: langOf(open[1] ?? ''),
      code: `${body.join('\n')}\n`,
      skip: marker ? marker[1] || 'marked as not runnable' : undefined,
    });
  }
  return blocks;
};

/**
 * A quick start's shell block as a script. A command holding a placeholder for a value the reader
 * copies from an earlier output (`<id>`, `GRANT_ID`) needs a person, so it is left out (named in a
 * comment); everything else runs as written.
 */
export const shellScript = (code: string): { script: string; left: string[] } => {
  const logical = code.replace(/\\\n/g, ' ').split('\n');
  const left: string[] = [];
  const kept = logical.map((line) => {
    const command = line.replace(/\s+#.*$/, '');
    if (/<[a-z][a-z-]*>|\b[A-Z]+_ID\b/.test(command)) {
      left.push(line.trim());
      return `# not run (placeholder): ${line.trim()}`;
    }
    return line;
  });
  return { script: kept.join('\n'), left };
};
