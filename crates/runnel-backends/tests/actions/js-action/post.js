const core = require("@actions/core");
console.log(`post: pre=${core.getState("from_pre")} main=${core.getState("from_main")}`);
