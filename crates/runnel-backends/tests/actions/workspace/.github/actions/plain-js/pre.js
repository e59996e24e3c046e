console.log("local pre must not run");
