// The layers of src/ (docs/architecture.md): a folder may import its own files and the folders
// below it, never one above it or beside it. `npm run lint:deps` checks it (CI runs it with lint).
//
//   common < utils < crypto < redis < bus < history, presence, fleet < metrics, room-keys < emitter < server
//   < http-api < admin-ui < core
//
// Package entry points other than src/index.ts (src/http-api/index.ts) only re-export: they may take
// from any layer but client/ (HttpApiComponent lives in core/ and is exported by roomcast/http-api).
//
// src/index.ts (the package root) may import everything but client/ and core/ (their own entry
// points). client/ is the browser SDK: it imports only itself and the browser-safe crypto files,
// and nothing outside client/ imports it.

/** Bottom first; the folders of one entry are siblings, and siblings do not import each other. */
const LAYERS = [
  ['common'],
  ['utils'],
  ['crypto'],
  ['redis'],
  ['bus'],
  ['history', 'presence', 'fleet'],
  ['metrics', 'room-keys'],
  ['emitter'],
  ['server'],
  ['http-api'],
  ['admin-ui'],
  ['core'],
];

/** Entry points that only re-export (see above): outside the layer rules. */
const ENTRY_POINTS = ['src/http-api/index.ts'];

/** What the client SDK may take from outside client/: no Node, Bun or server code. */
const CLIENT_MAY_IMPORT = ['src/crypto/base64.ts', 'src/crypto/ecdh.ts', 'src/crypto/sealed-auth.ts'];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const folders = (list) => `^src/(${list.join('|')})/`;

const layerRules = LAYERS.flatMap((layer, rank) => {
  const allowed = LAYERS.slice(0, rank + 1).flat();
  return layer.map((folder) => ({
    name: `layer-${folder}`,
    comment: `src/${folder}/ may import only ${allowed.join(', ')} (its own layer or below, not a sibling)`,
    severity: 'error',
    from: { path: `^src/${folder}/`, pathNot: ENTRY_POINTS.map((f) => `^${escape(f)}$`) },
    to: {
      path: '^src/',
      pathNot: [`^src/${folder}/`, ...(rank > 0 ? [folders(LAYERS.slice(0, rank).flat())] : [])],
    },
  }));
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'client-is-standalone',
      comment: 'the client SDK runs in browsers: it imports client/ and the browser-safe crypto files only',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: ['^src/client/', ...CLIENT_MAY_IMPORT.map((f) => `^${escape(f)}$`)] },
    },
    {
      name: 'nothing-imports-client',
      comment: 'client/ is the SDK, a package entry point of its own; the server side never imports it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/client/' },
      to: { path: '^src/client/' },
    },
    {
      name: 'root-entry-not-core',
      comment: 'src/index.ts runs on Node too: roomcast/core (Bun only) is its own entry point',
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { path: '^src/core/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles, type-only imports included',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    // Type-only imports count: a type import upward still ties a lower layer to a higher one.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
