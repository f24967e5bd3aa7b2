// Finding and reading the config: --config path, else $NEARMESH_CONFIG, else embedded defaults. Every
// failure (missing file, TOML syntax, bad value) becomes one ConfigError that names file, line and key.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { defaultDataDir, defaultName, type Environment, processEnvironment } from './defaults.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { configIssuesFromZod } from './issues.js';
import { type Config, configSchema } from './schema.js';

/** Overrides for what the defaults are computed from; anything absent comes from the running process. */
export type EnvironmentOptions = Partial<Environment>;

export interface LoadConfigOptions extends EnvironmentOptions {
  /** Explicit config file (--config). Missing file is an error. */
  readonly path?: string;
}

/** The file loadConfig would read: the explicit path, else $NEARMESH_CONFIG, else none (embedded defaults). */
export function configFilePath(
  options: { readonly path?: string; readonly env?: NodeJS.ProcessEnv } = {},
): string | undefined {
  if (options.path !== undefined) return resolve(options.path);
  const fromEnv = (options.env ?? process.env).NEARMESH_CONFIG;
  return fromEnv === undefined || fromEnv === '' ? undefined : resolve(fromEnv);
}

export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const file = configFilePath(options);
  if (file === undefined) return defaultConfig(options);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : undefined;
    const origin = options.path === undefined ? ' (named by NEARMESH_CONFIG)' : '';
    const reason = code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(error)})`;
    throw new ConfigError(file, [{ text: `${reason}${origin}` }], { cause: error });
  }
  return parseConfigText(text, file, options);
}

/** The config with no file at all: every key at its default. */
export function defaultConfig(options: EnvironmentOptions = {}): Config {
  return validate({}, undefined, undefined, process.cwd(), processEnvironment(options));
}

/** Parses and validates TOML text; `fileName` is used in messages and as the base of relative paths. */
export function parseConfigText(text: string, fileName: string, options: EnvironmentOptions = {}): Config {
  let document: unknown;
  try {
    // A BOM from a Windows editor is not worth a syntax error.
    document = parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
    const issue: ConfigIssue = {
      line: error.line,
      column: error.column,
      text: `invalid TOML: ${reason} (column ${error.column})`,
    };
    throw new ConfigError(fileName, [issue], { cause: error });
  }
  const config = validate(document, text, fileName, dirname(resolve(fileName)), processEnvironment(options));
  return { configFile: fileName, ...config };
}

function validate(
  document: unknown,
  text: string | undefined,
  file: string | undefined,
  baseDir: string,
  environment: Environment,
): Config {
  const schema = configSchema({
    name: defaultName(environment.hostname),
    dataDir: defaultDataDir(environment),
    baseDir,
    homedir: environment.homedir,
    board: environment.board,
  });
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  const [first, ...rest] = configIssuesFromZod(result.error.issues, document, text);
  // zod never fails without an issue; the fallback only satisfies the type.
  throw new ConfigError(file, [first ?? { text: result.error.message }, ...rest], { cause: result.error });
}
