// Module-loader hook: lets Node 20 load `import x from "./file.json"` without an import attribute.
//
// @actions/workflow-parser imports its JSON schema that way; Node 22 accepts it, Node 20 refuses
// it (ERR_IMPORT_ASSERTION_TYPE_MISSING). Serving the file as an ES module whose default export
// is the parsed JSON sidesteps the attribute check and changes nothing else.
import { readFile } from "node:fs/promises";

export async function load(url, context, nextLoad) {
  // An import that does carry `with { type: "json" }` is left to Node, which handles it.
  const attributes = context.importAttributes ?? context.importAssertions ?? {};
  if (url.startsWith("file:") && url.endsWith(".json") && attributes.type === undefined) {
    const text = await readFile(new URL(url), "utf8");
    return {
      format: "module",
      source: `export default ${text};`,
      shortCircuit: true
    };
  }
  return nextLoad(url, context);
}
