// Installs json-import-hook.mjs; pass with `node --import ./lib/register-json-hook.mjs`.
import { register } from "node:module";

register("./json-import-hook.mjs", import.meta.url);
