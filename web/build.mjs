// Builds the operator console from web/ into internal/console/dist (or the
// directory given as the first argument, which the check of the committed
// build uses). The output depends only on the sources and the pinned
// packages in package-lock.json, so a rebuild of unchanged sources is
// byte-identical.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(web, "..", "internal", "console", "dist"));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: join(web, "src", "main.js") },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  charset: "utf8",
  outdir: out,
  logLevel: "warning",
});
await build({
  entryPoints: { app: join(web, "src", "style.css") },
  bundle: true,
  minify: true,
  outdir: out,
  logLevel: "warning",
});
await copyFile(join(web, "index.html"), join(out, "index.html"));
await copyFile(join(web, "favicon.svg"), join(out, "favicon.svg"));
