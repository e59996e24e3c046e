#!/usr/bin/env node
// Oracle for expressions: evaluates expressions with GitHub's @actions/expressions and prints
// results in the shapes of `runnel eval`, so the two outputs can be compared line by line.
//
//   node eval-expr.mjs [--context FILE.json] EXPR
//       prints the value of EXPR as JSON.
//   node eval-expr.mjs [--context FILE.json] < lines
//       reads JSON lines {"expr": "...", "context": {...}} (context optional, default from
//       --context) and writes one line per input: {"ok": VALUE} or {"error": "message"}.
//
// Every context name is an allowed named-value; the status functions (success() etc.) are
// extension functions reporting a successful job. NaN and the infinities are written as the
// strings "NaN", "Infinity", "-Infinity".
//
// A result line may carry `"notes": [...]`, naming the places where this case went through a rule
// on which the npm package is known to differ from GitHub's runner (lib/runner-rules.mjs). The
// differential test excuses a disagreement only when the matching note is present.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Evaluator, Lexer, Parser, data, wellKnownFunctions } from "@actions/expressions";
import * as ast from "@actions/expressions/ast";
import { expressionDataToJson, plainToExpressionData } from "./lib/json-out.mjs";
import {
  g15,
  hasFormatSpecifier,
  hasTrailingTextAfterJson,
  isIntegerLikeKey,
  runnerEvaluatesArgument,
  runnerParseNumber,
  runnerTreeDepth,
  sameNumber
} from "./lib/runner-rules.mjs";

/** Notes gathered while evaluating the current case. */
let notes = new Set();

// Instrumentation. These wrappers keep the package's results and only record notes.
const originalNumber = data.StringData.prototype.number;
data.StringData.prototype.number = function () {
  const js = originalNumber.call(this);
  if (!sameNumber(js, runnerParseNumber(this.value))) notes.add("number-parse");
  return js;
};
const originalCoerceString = data.NumberData.prototype.coerceString;
data.NumberData.prototype.coerceString = function () {
  const js = originalCoerceString.call(this);
  if (js !== g15(this.value)) notes.add("number-format");
  return js;
};

function noteJsonShape(d) {
  if (d.kind === data.Kind.Number && JSON.stringify(d.value) !== g15(d.value)) {
    notes.add("tojson-number");
  } else if (d.kind === data.Kind.Array) {
    d.values().forEach(noteJsonShape);
  } else if (d.kind === data.Kind.Dictionary) {
    const keys = d.pairs().map(p => p.key);
    if (keys.length > 1 && keys.some(isIntegerLikeKey)) notes.add("integer-key-order");
    d.values().forEach(noteJsonShape);
  }
}

function noteParsedJson(text) {
  if (hasTrailingTextAfterJson(text)) notes.add("json-trailing-text");
  try {
    JSON.parse(text, function (_key, value) {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length > 1 && keys.some(isIntegerLikeKey)) notes.add("integer-key-order");
        const lower = new Set(keys.map(k => k.toLowerCase()));
        if (lower.size !== keys.length) notes.add("duplicate-key");
      }
      return value;
    });
  } catch {
    // The package reports the error itself.
  }
  // JSON.parse keeps the last of two identical keys, the package's Dictionary the first of two
  // keys differing in case; the runner's parser may do either, so both count as duplicates.
  const keyPattern = /"((?:[^"\\]|\\.)*)"\s*:/g;
  const seen = new Map();
  for (const m of text.matchAll(keyPattern)) seen.set(m[1], (seen.get(m[1]) ?? 0) + 1);
  if ([...seen.values()].some(count => count > 1)) notes.add("duplicate-key");
}

const statusFunctions = [
  ["success", true],
  ["always", true],
  ["failure", false],
  ["cancelled", false]
].map(([name, value]) => ({
  name,
  minArgs: 0,
  maxArgs: 0,
  call: () => new data.BooleanData(value)
}));

const functions = new Map(statusFunctions.map(f => [f.name, f]));
functions.set("format", {
  ...wellKnownFunctions.format,
  call: (...args) => {
    if (hasFormatSpecifier(args[0].coerceString())) notes.add("format-specifier");
    return wellKnownFunctions.format.call(...args);
  }
});
functions.set("tojson", {
  ...wellKnownFunctions.tojson,
  call: (...args) => {
    noteJsonShape(args[0]);
    return wellKnownFunctions.tojson.call(...args);
  }
});
functions.set("fromjson", {
  ...wellKnownFunctions.fromjson,
  call: (...args) => {
    noteParsedJson(args[0].coerceString());
    return wellKnownFunctions.fromjson.call(...args);
  }
});

/**
 * The package evaluates every argument before calling a function; the runner's functions
 * evaluate theirs on demand. An error from an argument the runner would never evaluate is noted
 * as `lazy-arguments`.
 */
class OracleEvaluator extends Evaluator {
  visitFunctionCall(call) {
    const name = call.functionName.lexeme.toLowerCase();
    const values = [];
    for (let i = 0; i < call.args.length; i++) {
      try {
        values.push(this.eval(call.args[i]));
      } catch (e) {
        if (!runnerEvaluatesArgument(name, values, i, call.args.length, data.Kind)) {
          notes.add("lazy-arguments");
        }
        throw e;
      }
    }
    const f = functions.get(name) ?? wellKnownFunctions[name];
    return f.call(...values);
  }
}

/**
 * The package counts parser nesting against the limit of 50 (every parenthesis, `.`, `[`, `!`);
 * the runner measures the finished tree. When the package rejects an expression for depth, parse
 * it again without the limit and note `max-depth` if the runner's tree would be within it.
 */
function noteDepthLimit(tokens, names) {
  const limited = Parser.prototype.incrDepth;
  Parser.prototype.incrDepth = function () {
    this.depth++;
  };
  try {
    const tree = new Parser(tokens, names, statusFunctions).parse();
    if (runnerTreeDepth(tree, ast) <= 50) notes.add("max-depth");
  } catch {
    // Some other error: no note.
  } finally {
    Parser.prototype.incrDepth = limited;
  }
}

function noteStringLiterals(tokens) {
  for (const token of tokens) {
    if (token.lexeme.startsWith("'") && token.lexeme.length >= 2) {
      const inner = token.lexeme.slice(1, -1);
      if (inner.split("''").join("'") !== token.value) notes.add("quote-unescape");
    }
  }
}

/** Evaluates one expression; returns the JSON text of the result line. */
export function evaluateLine(expr, context) {
  notes = new Set();
  let line;
  try {
    if (typeof expr !== "string") throw new Error("`expr` must be a string");
    const { tokens } = new Lexer(expr).lex();
    noteStringLiterals(tokens);
    let tree;
    try {
      tree = new Parser(tokens, Object.keys(context), statusFunctions).parse();
    } catch (e) {
      if (String(e?.message).startsWith("Exceeded max expression depth")) {
        noteDepthLimit(tokens, Object.keys(context));
      }
      throw e;
    }
    // The package returns no tree for an expression without tokens; GitHub rejects it.
    if (tree === undefined) throw new Error("Unexpected end of expression");
    const dictionary = plainToExpressionData(context);
    const value = new OracleEvaluator(tree, dictionary, functions).evaluate();
    line = `{"ok":${expressionDataToJson(value)}`;
  } catch (e) {
    line = `{"error":${JSON.stringify(String(e?.message ?? e))}`;
  }
  if (notes.size > 0) line += `,"notes":${JSON.stringify([...notes].sort())}`;
  return `${line}}`;
}

function parseArgs(argv) {
  let contextFile;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--context") contextFile = argv[++i];
    else rest.push(argv[i]);
  }
  return { contextFile, expr: rest[0] };
}

async function main() {
  const { contextFile, expr } = parseArgs(process.argv.slice(2));
  const defaultContext = contextFile ? JSON.parse(readFileSync(contextFile, "utf8")) : {};
  if (expr !== undefined) {
    const line = JSON.parse(evaluateLine(expr, defaultContext));
    if ("error" in line) {
      process.stderr.write(`error: ${line.error}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify(line.ok)}\n`);
    return;
  }
  const out = [];
  for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (text.trim() === "") continue;
    let request;
    try {
      request = JSON.parse(text);
    } catch (e) {
      out.push(`{"error":${JSON.stringify(`invalid request line: ${e.message}`)}}`);
      continue;
    }
    out.push(evaluateLine(request.expr, request.context ?? defaultContext));
  }
  process.stdout.write(out.length > 0 ? `${out.join("\n")}\n` : "");
}

await main();
