#!/usr/bin/env node
// The npm side of parse-plan.sh: parses and converts the given workflow files with
// @actions/workflow-parser N times in one process and prints, like `runnel bench-parse`,
//   {"files": F, "iterations": N, "seconds": S}
// Files are read once before timing; one untimed pass warms the JIT first.
//
// Usage: node bench-parse.mjs [--iterations N] FILE...
import { readFileSync } from "node:fs";
import { convertModule, workflowParser } from "../oracle/lib/load-workflow-parser.mjs";

const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = workflowParser;

const argv = process.argv.slice(2);
let iterations = 10;
const files = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--iterations") iterations = Number(argv[++i]);
  else files.push(argv[i]);
}
if (!Number.isInteger(iterations) || iterations < 1 || files.length === 0) {
  process.stderr.write("usage: node bench-parse.mjs [--iterations N] FILE...\n");
  process.exit(2);
}
const inputs = files.map(name => ({ name, content: readFileSync(name, "utf8") }));

async function onePass() {
  for (const file of inputs) {
    const parsed = parseWorkflow(file, new NoOperationTraceWriter());
    if (parsed.value !== undefined) {
      await convertWorkflowTemplate(parsed.context, parsed.value, undefined, {
        errorPolicy: convertModule.ErrorPolicy.ReturnErrorsOnly
      });
    }
  }
}

await onePass();
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) await onePass();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(`${JSON.stringify({ files: inputs.length, iterations, seconds })}\n`);
