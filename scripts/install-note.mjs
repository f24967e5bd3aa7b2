// Printed by `npm ci` / `npm install` before the dependencies install, so the quiet minutes that may follow
// are explained: npm hides a dependency's build output.
const buildsFromSource =
  process.env.npm_config_build_from_source === 'true' || process.env.npm_config_build_from_source === '';
process.stdout.write(
  [
    'nearmesh: installing dependencies.',
    buildsFromSource
      ? '  better-sqlite3 (SQLite) is built from source here: several minutes, silent while it runs (3.4 min on a 2-core x64 PC).'
      : '  better-sqlite3 (SQLite) comes prebuilt for Node 20-25 on x64, arm64 and armv7 (every Pi but the armv6 Pi 1 and Zero) when\n' +
        '  GitHub is reachable; otherwise it is built from source: several silent minutes (3.4 on a 2-core x64 PC, more on a Pi); it needs g++, make and python3.',
    '  Then the TypeScript is compiled (npm run build).',
    '',
  ].join('\n'),
);
