const fs = require("fs");
console.log(`node-version=${process.env["INPUT_NODE-VERSION"]} who=${process.env["INPUT_WHO_AM_I"]}`);
console.log(`action path ok=${fs.existsSync(process.env.GITHUB_ACTION_PATH + "/action.yml")}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, "answer=42\n");
fs.appendFileSync(process.env.GITHUB_STATE, "saved=from-main\n");
fs.appendFileSync(process.env.GITHUB_ENV, "FROM_JS=exported\n");
