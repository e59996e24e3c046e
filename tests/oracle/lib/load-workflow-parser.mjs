// Imports @actions/workflow-parser on any Node >= 20.6.
//
// The package imports its JSON schema without an import attribute. Node 22 accepts that; Node 20
// throws ERR_IMPORT_ASSERTION_TYPE_MISSING. Registering json-import-hook.mjs before the (dynamic)
// import makes both work without a bundler or a second Node; see README.md for the alternatives.
import { register } from "node:module";

register("./json-import-hook.mjs", import.meta.url);

export const workflowParser = await import("@actions/workflow-parser");
export const convertModule = await import("@actions/workflow-parser/model/convert");
