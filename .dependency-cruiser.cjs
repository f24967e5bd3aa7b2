// The layering rule of docs/ARCHITECTURE.md, checked by `npm run lint`: a module may import its own layer
// and the layers below it, never one above; and no import circles anywhere. Type-only imports count too.
/** Lowest first. A folder path, or a single file, relative to the repository root. */
const LAYERS = [
  ['agent/core/'],
  ['transports/', 'boards/'],
  ['agent/protocol/', 'agent/identity/', 'agent/ops/'],
  ['agent/security/'],
  ['agent/trust/'],
  ['agent/links/'],
  ['agent/mesh/'],
  ['agent/messaging/'],
  ['agent/coordination/'],
  ['agent/api.ts'],
  ['agent/gateway/', 'agent/control/', 'agent/console/', 'agent/http/'],
  ['agent/config/'],
  ['agent/assembly/', 'agent/agent.ts', 'agent/index.ts'],
  ['agent/cli/'],
];

/** Imports that run up the layers on purpose, each with its reason in docs/ARCHITECTURE.md. */
const ALLOWED_UPWARD = [];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const pathsOf = (layer) => `^(${layer.map((path) => escape(path) + (path.endsWith('/') ? '' : '$')).join('|')})`;

const upward = LAYERS.slice(0, -1).map((layer, index) => ({
  name: `no-upward-from-${layer[0].replace(/\/$/, '').replaceAll('/', '-')}`,
  comment: `${layer.join(', ')} may not import a higher layer (docs/ARCHITECTURE.md, "Layers")`,
  severity: 'error',
  from: { path: pathsOf(layer) },
  to: {
    path: pathsOf(LAYERS.slice(index + 1).flat()),
    ...(ALLOWED_UPWARD.length > 0 ? { pathNot: ALLOWED_UPWARD.map(([, to]) => `^${escape(to)}$`) } : {}),
  },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'every-module-in-a-layer',
      comment: 'a new folder of agent/ must be placed in LAYERS (.dependency-cruiser.cjs) before it imports anything',
      severity: 'error',
      from: { path: '^agent/', pathNot: pathsOf(LAYERS.flat()) },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other (directly or around a loop) cannot be understood or tested alone',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
