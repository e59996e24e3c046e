#!/usr/bin/env node
// Oracle for workflow files: runs GitHub's @actions/workflow-parser (parse, then convert, as its
// README does) on each file named on the command line and prints one line per file:
//
//   <file>\tok            the parser accepts the file
//   <file>\terr\t<msg>    it reports errors (first message shown, newlines flattened)
//
// Usage: node parse-workflow.mjs FILE...
import { readFileSync } from "node:fs";
import { workflowParser, convertModule } from "./lib/load-workflow-parser.mjs";

const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = workflowParser;

/** Returns the list of error messages GitHub's parser reports for one workflow text. */
export async function workflowErrors(name, content) {
  const parsed = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  const errors = parsed.context.errors.getErrors().map(e => e.message);
  if (errors.length > 0 || parsed.value === undefined) {
    return errors.length > 0 ? errors : ["no workflow value"];
  }
  // Conversion finds what the schema alone cannot (bad cron, needs cycles, matrix shapes…).
  const template = await convertWorkflowTemplate(parsed.context, parsed.value, undefined, {
    errorPolicy: convertModule.ErrorPolicy.ReturnErrorsOnly
  });
  return (template.errors ?? []).map(e => e.Message);
}

for (const file of process.argv.slice(2)) {
  let errors;
  try {
    errors = await workflowErrors(file, readFileSync(file, "utf8"));
  } catch (e) {
    errors = [`parser threw: ${e.message}`];
  }
  if (errors.length === 0) {
    process.stdout.write(`${file}\tok\n`);
  } else {
    process.stdout.write(`${file}\terr\t${errors[0].replace(/\s+/g, " ")}\n`);
  }
}
