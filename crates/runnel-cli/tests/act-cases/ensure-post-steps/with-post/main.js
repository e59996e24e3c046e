console.log("main of the action ran");
