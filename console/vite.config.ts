import { defineConfig } from "vite";

// The bundle is committed (functions/console/dist) and embedded in the Lambda binary, and
// scripts/console-check.sh rebuilds it to prove the commit matches the source: so the output
// must depend on the source only (content hashes in names, no timestamps, no source maps).
export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact", legalComments: "none" },
  build: {
    outDir: "../functions/console/dist",
    emptyOutDir: true,
    sourcemap: false,
    // The polyfill would be one more script; every browser we support preloads modules.
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    target: "es2022",
  },
  server: {
    // `npm run dev` against `make dev` on :3000, same origin as far as the app can tell.
    proxy: { "/api": "http://127.0.0.1:3000" },
  },
});
