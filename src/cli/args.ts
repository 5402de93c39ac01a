/** Shared CLI helpers: argument parsing with one-line errors, and the exit codes. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * No command takes positional arguments, and an option that is not `multiple` takes one value:
 * `config check -c a.yaml b.yaml` checked a.yaml and said nothing of b.yaml, and `-c a -c b`
 * checked only b. Both are refused rather than read as one file.
 */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: T) {
  const usage = (message: string) => new UsageError(`warden ${command}: ${message} (see warden ${command} --help)`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0] ?? '');
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option?.type !== 'string' || option.multiple === true) continue;
    if (seen.has(token.name)) {
      throw usage(`${option.short === undefined ? '' : `-${option.short}/`}--${token.name} is given more than once; it takes one value`);
    }
    seen.add(token.name);
  }
  return parsed;
}
