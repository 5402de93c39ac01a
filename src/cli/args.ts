/** Shared CLI helpers: argument parsing with one-line errors, and the exit codes. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`warden ${command}: ${(err as Error).message.split('\n')[0]} (see warden ${command} --help)`);
  }
}
