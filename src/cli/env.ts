/**
 * Command-line options stand for the environment variables of src/config.ts (`--port 5000` is
 * SLUICE_PORT=5000): the configuration has one reading and one validation, and a bad value is
 * reported with the variable's name.
 */
import { InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { CliError } from './errors.js';

export type EnvOverrides = Record<string, string | number | undefined>;

/** The environment with the options given on the command line applied. */
export function envWith(overrides: EnvOverrides): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = String(value);
  return env;
}

/** The validated configuration; a bad value is a usage error (exit 2) naming the variable. */
export function readConfig(overrides: EnvOverrides = {}): Config {
  try {
    return loadConfig(envWith(overrides));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** Commander parser of `--port`: a whole number 0–65535. */
export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected a whole number from 0 to 65535.');
  return Number(value);
}
