console.log("post of the action ran");
process.exit(1);
