const core = require("@actions/core");
const who = core.getInput("who", { required: true });
const greeting = core.getInput("greeting");
console.log(`main sees pre state ${core.getState("from_pre")}`);
core.setOutput("greeting", `${greeting} ${who}`);
core.saveState("from_main", "m1");
core.exportVariable("FROM_CORE", "exported");
core.info("main ran");
