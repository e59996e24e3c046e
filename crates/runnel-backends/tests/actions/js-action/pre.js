const core = require("@actions/core");
core.saveState("from_pre", "p1");
console.log("pre ran");
