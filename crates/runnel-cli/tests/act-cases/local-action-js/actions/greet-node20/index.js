const fs = require("fs");
const who = process.env["INPUT_WHO"];
const greeting = process.env["INPUT_GREETING"];
const said = `${greeting}, ${who}!`;
console.log(`${said} (from ${process.env.GITHUB_ACTION_PATH ? "an action path" : "a js action"})`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `said=${said}\n`);
