/** A failure the CLI reports as one message on stderr and an exit code (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Prints a failure the way the CLI does (one line for a CliError, the whole error otherwise) and returns its exit code. */
export function report(err: unknown): number {
  if (err instanceof CliError) {
    if (err.message) console.error(err.message);
    return err.exitCode;
  }
  console.error(err);
  return EXIT.failed;
}
