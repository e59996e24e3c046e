#!/usr/bin/env node
// Deterministic generator of expression test cases for the differential test.
//
//   node gen-expr.mjs --context-out FILE.json > cases.jsonl
//
// Writes the shared context to FILE.json and prints one JSON line {"expr": "..."} per case. The
// output depends only on SEED and this file (integer-only PRNG, no Date, no Math.random), so a
// disagreement seen once reproduces on every machine.
//
// Cases come in two halves: hand-listed families that reach every literal form, operator,
// coercion pair, function and error on purpose, and seeded random trees that mix them in ways
// nobody would list.
import { writeFileSync } from "node:fs";
import { plainToJson } from "./lib/json-out.mjs";

const SEED = 0x5eed2025;
const RANDOM_TREES = 2600;

// mulberry32: tiny, well-distributed, and identical on every JS engine (32-bit integer math).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const int = n => Math.floor(random() * n);
const pick = list => list[int(list.length)];
const chance = p => random() < p;

/** The context every case sees: github-like nesting plus corners of every value kind. */
export const CONTEXT = {
  github: {
    event_name: "push",
    ref: "refs/heads/main",
    ref_name: "main",
    ref_type: "branch",
    ref_protected: false,
    sha: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
    repository: "Octo-Org/Hello-World",
    repository_owner: "Octo-Org",
    actor: "MonaLisa",
    run_id: 1234567890,
    run_number: 42,
    run_attempt: 1,
    head_ref: "",
    server_url: "https://gitea.example.com",
    workspace: "/home/runner/work/Hello-World",
    event: {
      action: "opened",
      number: 7,
      forced: false,
      before: "0000000000000000000000000000000000000000",
      commits: [
        {
          id: "abc123",
          message: "Fix bug\n\nLonger body",
          author: { name: "Mona", email: "mona@example.com", username: "MonaLisa" },
          distinct: true,
          added: ["a.txt"],
          modified: []
        },
        {
          id: "DEF456",
          message: "Add Feature [skip ci]",
          author: { name: "Hubot", email: "hubot@example.com" },
          distinct: false,
          added: [],
          modified: ["README.md", "src/lib.rs"]
        },
        { id: "0", message: "", author: null, distinct: true }
      ],
      head_commit: { id: "abc123", message: "Fix bug", timestamp: "2024-05-01T12:00:00Z" },
      pull_request: {
        number: 7,
        title: "Add 'quotes' and {braces}",
        body: null,
        draft: false,
        merged: false,
        labels: [{ name: "bug" }, { name: "Enhancement" }, { name: "good first issue" }],
        head: { ref: "feature/x-y", sha: "f00d" },
        base: { ref: "main", sha: "beef" }
      },
      inputs: { "dry-run": "true", count: "3", ratio: "0.5", empty: "", flag: "false" },
      repository: { name: "Hello-World", private: true, stargazers_count: 0, topics: ["ci", "Rust"] }
    }
  },
  env: {
    CI: "true",
    HOME: "/root",
    "MY-VAR": "Mixed Case Value",
    ZERO: "0",
    ONE: "1",
    EMPTY: "",
    NUM: "12",
    FLOAT: "1.50",
    HEX: "0x1F",
    OCT: "0o17",
    SPACE_NUM: " 42 ",
    FALSE_STR: "false",
    TRUE_STR: "TRUE",
    NAN_STR: "NaN",
    INF_STR: "Infinity",
    JSON_STR: '{"a":[1,2,{"b":null}],"c":"d","e":{"f":true}}',
    JSON_ARR: '["x","Y",3,null,false]',
    BAD_JSON: '{"a":',
    FMT: "{0}-{1}",
    BRACES: "{{x}}",
    QUOTE: "it's",
    MULTI: "line1\nline2",
    UNICODE: "Ünïcödé Straight"
  },
  matrix: {
    os: "ubuntu-latest",
    node: 20,
    version: 1.5,
    "include-tests": true,
    flags: ["--release", "-V", ""],
    cfg: { debug: false, level: 0, name: "Default" }
  },
  steps: {
    "build-step": {
      outputs: { result: "success", "exit-code": "0", json: "[1,2,3]", version: "1.2.3", yes: "true" },
      outcome: "success",
      conclusion: "success"
    },
    test: { outputs: {}, outcome: "failure", conclusion: "success" }
  },
  needs: {
    build: { result: "success", outputs: { artifact: "app.tar", size: "1024" } },
    lint: { result: "skipped", outputs: {} },
    "deploy-prod": { result: "failure", outputs: { url: "" } }
  },
  inputs: { "dry-run": true, count: 3, name: "World", ratio: -0.25, tags: "a,b,c" },
  strategy: { "fail-fast": true, "job-index": 0, "job-total": 4, "max-parallel": 2 },
  runner: { os: "Linux", arch: "X64", temp: "/tmp", debug: "" },
  vars: { REGION: "eu-west-1", Feature_Flag: "on", EMPTY_VAR: "" },
  nums: {
    zero: 0,
    negzero: -0,
    one: 1,
    neg: -7,
    frac: 0.1,
    half: 0.5,
    third: 0.3333333333333333,
    pi: 3.141592653589793,
    million: 1000000,
    big15: 123456789012345,
    big16: 1234567890123456,
    int53: 9007199254740993,
    big: 1e20,
    huge: 1.7976931348623157e308,
    small: 1e-7,
    tiny: 5e-324,
    negbig: -2.5e25
  },
  misc: {
    nothing: null,
    yes: true,
    no: false,
    empty_arr: [],
    empty_obj: {},
    nested: [[1, 2], [3, [4, 5]], []],
    mixed: [1, "1", true, null, { a: 1 }, [1], "ABC", 0, ""],
    objs: [{ a: 1, b: "x" }, { a: 2 }, { b: "y", c: null }, { A: 3 }],
    "Key-With-Dash": "dash",
    CamelKey: "camel",
    true: "keyword key",
    null: "null key",
    "with space": "space key",
    _under: "underscore"
  }
};

// ---- value pools -------------------------------------------------------------------------

const NUMBER_LITERALS = [
  "0", "-0", "+0", "1", "-1", "+1", "1.5", ".5", "-.5", "1.", "0.1", "0.30", "1e3", "1E3",
  "1e+3", "1e-3", "1.5e10", "1e14", "1e15", "1e16", "1e20", "1e21", "-1e20", "1e-4", "1e-5",
  "0.0001", "0.00001", "123456789012345", "1234567890123456", "9007199254740993",
  "123456789012345678", "3.14159265358979", "2.5e-300", "5e-324", "1.7976931348623157e308",
  "1e308", "0x1F", "0xff", "0xFF", "0x0", "0x7fffffff", "0x80000000", "0xffffffff",
  "0x100000000", "0x00000000001", "0X1F", "0o17", "0o0", "0o777", "0O17", "0b11", "0123", "00",
  "007", "1e309", "-1e309", "NaN", "Infinity", "-Infinity", "+Infinity"
];
const BAD_NUMBER_LITERALS = [
  "1e", "1.2.3", "-", "+", "1a", "0x", "0xg", "1_000", "--1", "-NaN", "1e+", ".", "0o8", "1,5"
];
const STRING_LITERALS = [
  "''", "'a'", "'abc'", "'ABC'", "'Abc'", "'it''s'", "''''", "'a''b'", "'a''b''c'", "''''''",
  "'x'''", "'\\n'", "'tab\\there'", "'{0}'", "'{{0}}'", "'Ünïcödé'", "'ünïcödé'", "' 12 '",
  "'0x10'", "'0X10'", "'1e309'", "'0b11'", "'0xffffffff'", "'true'", "'false'", "'null'",
  "'NaN'", "'Infinity'", "'0'", "'1'", "'-0'", "'1.0'", "'.5'", "'1.'", "'  '", "'line\nbreak'",
  "'main'", "'MAIN'", "'refs/heads/main'", "'ubuntu-latest'", "'_'", "'a_b'", "'[1]'"
];
const KEYWORD_LITERALS = ["true", "false", "null"];

/** Expressions of every kind, used as operands of the coercion and function matrices. */
const TYPED_VALUES = [
  "null", "true", "false", "0", "-0", "1", "2", "1.5", "-7", "NaN", "Infinity", "-Infinity",
  "''", "'a'", "'A'", "'abc'", "'0'", "'1'", "' 1 '", "'1.5'", "'0x10'", "'true'", "'false'",
  "'null'", "'NaN'", "fromJSON('[]')", "fromJSON('{}')", "fromJSON('[1,2]')",
  "fromJSON('{\"a\":1}')", "github", "github.event.commits", "matrix.flags", "env.ZERO",
  "env.EMPTY", "nums.negzero", "nums.frac", "misc.nothing", "misc.mixed",
  "github.event.commits.*.id", "misc.empty_arr", "inputs.count", "inputs['dry-run']",
  "needs.*.result", "1e20", "0.1"
];

const COMPARISON_OPS = ["==", "!=", "<", "<=", ">", ">="];
const LOGICAL_OPS = ["&&", "||"];
const FUNCTION_NAMES = {
  contains: ["contains", "Contains", "CONTAINS"],
  startsWith: ["startsWith", "startswith", "STARTSWITH"],
  endsWith: ["endsWith", "endswith", "EndsWith"],
  format: ["format", "Format", "FORMAT"],
  join: ["join", "Join", "JOIN"],
  toJSON: ["toJSON", "tojson", "ToJson"],
  fromJSON: ["fromJSON", "fromjson", "FromJSON"],
  case: ["case", "Case", "CASE"]
};

// ---- paths over the context --------------------------------------------------------------

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function identifierOk(key) {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key);
}

function quote(text) {
  return `'${text.replace(/'/g, "''")}'`;
}

function randomCase(text) {
  if (!chance(0.2)) return text;
  return [...text].map(c => (chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join("");
}

/** A property/index/wildcard path from a context root, mostly through existing data. */
function randomPath() {
  const roots = Object.keys(CONTEXT);
  const root = pick(roots);
  let text = chance(0.1) ? randomCase(root) : root;
  let value = CONTEXT[root];
  let filtered = false;
  const steps = 1 + int(4);
  for (let i = 0; i < steps; i++) {
    if (isObject(value) || (filtered && Array.isArray(value))) {
      const keys = Object.keys(isObject(value) ? value : {});
      const roll = random();
      if (roll < 0.1) {
        text += chance(0.5) ? ".*" : "[*]";
        value = isObject(value) ? Object.values(value)[0] : value[0];
        filtered = true;
      } else if (roll < 0.17 || keys.length === 0) {
        text += chance(0.5) ? ".missing" : "['no-such-key']";
        value = undefined;
      } else {
        const key = pick(keys);
        const spelled = randomCase(key);
        if (identifierOk(key) && chance(0.75)) text += `.${spelled}`;
        else text += `[${quote(spelled)}]`;
        value = value[key];
      }
    } else if (Array.isArray(value)) {
      const roll = random();
      if (roll < 0.25) {
        text += pick([".*", "[*]"]);
        value = value[0];
        filtered = true;
      } else {
        const index = int(value.length + 2);
        text += pick([`[${index}]`, `['${index}']`, `[${index}.7]`, "[-1]", `[${index} == 0]`]);
        value = value[index];
      }
    } else {
      if (chance(0.3)) text += pick([".length", "[0]", ".*"]);
      break;
    }
  }
  return text;
}

// ---- random trees ------------------------------------------------------------------------

function randomLiteral() {
  const roll = random();
  if (roll < 0.4) return pick(NUMBER_LITERALS);
  if (roll < 0.85) return pick(STRING_LITERALS);
  return pick(KEYWORD_LITERALS);
}

function randomCall(depth) {
  const name = pick(Object.keys(FUNCTION_NAMES));
  const spelled = pick(FUNCTION_NAMES[name]);
  const arg = () => randomTree(depth + 1);
  switch (name) {
    case "format": {
      const fmt = chance(0.6)
        ? quote(pick(["{0}", "{0}-{1}", "{1}{0}", "{{{0}}}", "x{0}y", "{0}{0}", "{2}", "}}{{"]))
        : arg();
      const count = int(3);
      return `${spelled}(${[fmt, ...Array.from({ length: count }, arg)].join(", ")})`;
    }
    case "join":
      return chance(0.5) ? `${spelled}(${arg()})` : `${spelled}(${arg()}, ${arg()})`;
    case "toJSON":
      return `${spelled}(${arg()})`;
    case "fromJSON":
      return chance(0.6) ? `${spelled}(toJSON(${arg()}))` : `${spelled}(${arg()})`;
    case "case": {
      const pairs = 1 + int(2);
      const args = [];
      for (let i = 0; i < pairs; i++) args.push(chance(0.8) ? randomComparison(depth + 1) : arg(), arg());
      args.push(arg());
      return `${spelled}(${args.join(", ")})`;
    }
    default:
      return `${spelled}(${arg()}, ${arg()})`;
  }
}

function randomComparison(depth) {
  return `${randomTree(depth + 1)} ${pick(COMPARISON_OPS)} ${randomTree(depth + 1)}`;
}

function randomTree(depth = 0) {
  const roll = random();
  if (depth >= 4 || roll < 0.3) return chance(0.5) ? randomLiteral() : randomPath();
  if (roll < 0.45) return randomCall(depth);
  if (roll < 0.6) return randomComparison(depth);
  if (roll < 0.75) return `${randomTree(depth + 1)} ${pick(LOGICAL_OPS)} ${randomTree(depth + 1)}`;
  if (roll < 0.85) return `!${randomTree(depth + 1)}`;
  if (roll < 0.93) return `(${randomTree(depth + 1)})`;
  if (roll < 0.97) return `(${randomTree(depth + 1)})${pick(["[0]", ".a", ".*", "['b']"])}`;
  return pick(["success()", "always()", "failure()", "cancelled()", "Success()"]);
}

// ---- hand-listed families ----------------------------------------------------------------

function* literalCases() {
  for (const lit of [...NUMBER_LITERALS, ...BAD_NUMBER_LITERALS, ...STRING_LITERALS, ...KEYWORD_LITERALS]) {
    yield lit;
    yield `format('{0}', ${lit})`;
    yield `toJSON(${lit})`;
    yield `${lit} == 0`;
    yield `!${lit}`;
  }
  yield* ["TRUE", "True", "Null", "NULL", "FALSE", "nan", "infinity"];
}

function* coercionCases() {
  for (const a of TYPED_VALUES) {
    for (const b of TYPED_VALUES) {
      // Every pair meets == and one ordering; the other operators take a rotating share.
      yield `${a} == ${b}`;
      yield `${a} ${pick(["<", "<=", ">", ">=", "!="])} ${b}`;
      if (chance(0.25)) yield `${a} ${pick(LOGICAL_OPS)} ${b}`;
    }
  }
}

function* precedenceCases() {
  const operands = ["true", "false", "null", "0", "1", "'a'", "''", "env.ZERO", "nums.zero", "'A'"];
  const ops = [...COMPARISON_OPS, ...LOGICAL_OPS];
  for (let i = 0; i < 400; i++) {
    const n = 3 + int(3);
    const parts = [pick(operands)];
    for (let j = 1; j < n; j++) {
      parts.push(pick(ops));
      parts.push(chance(0.2) ? `!${pick(operands)}` : pick(operands));
    }
    let text = parts.join(" ");
    if (chance(0.3)) text = `!(${text})`;
    yield text;
  }
  yield* [
    "!true == false", "!(true == false)", "1 < 2 == true", "1 == 1 < 2", "true || false && false",
    "(true || false) && false", "null || 'x' && ''", "'' || 0 || null", "'a' && 'b' || 'c'",
    "!!'x'", "!!''", "!!!0", "1 < 2 < 3", "3 > 2 > 1", "1 <= 1 >= 1", "false && fromJSON('x')",
    "true || fromJSON('x')", "true && fromJSON('x')", "null && undefinedfunc()"
  ];
}

function* pathCases() {
  const fixed = [
    "github", "github.event", "github.event.commits[0].author.name", "github.event.commits[1]['author'].EMAIL",
    "github.event.commits.*.author.name", "github.event.commits.*.author.*", "github.event.commits.*.added.*",
    "github.event.commits.*.modified", "github.event.commits.*.*", "github.event.commits[*].id",
    "github.event.pull_request.labels.*.name", "github.event.pull_request.labels[*]['NAME']",
    "github.event['pull_request'].head.ref", "GitHub.Event.Pull_Request.Head.Ref", "github.event.inputs.dry-run",
    "github.event.inputs['dry-run']", "github.*", "github.*.*", "github.*.commits", "github.event.*.name",
    "env.MY-VAR", "env['MY-VAR']", "env.my-var", "ENV.home", "matrix.flags[0]", "matrix.flags['1']",
    "matrix.flags[1.9]", "matrix.flags[-1]", "matrix.flags[3]", "matrix.flags[2147483648]", "matrix.flags[true]",
    "matrix.flags[null]", "matrix.flags[false]", "matrix.flags['x']", "matrix.flags[NaN]", "matrix.flags[Infinity]",
    "matrix.flags[matrix.flags]", "matrix.cfg[matrix.cfg]", "matrix.cfg['LEVEL']", "matrix.cfg.*", "matrix.*",
    "matrix.include-tests", "steps.build-step.outputs.result", "steps['build-step'].outputs['exit-code']",
    "steps.missing.outputs.x", "steps.*.outcome", "steps.*.outputs.*", "needs.*.result", "needs.*.outputs.url",
    "needs.deploy-prod.result", "needs.*.outputs.*", "misc.true", "misc.null", "misc['with space']",
    "misc.Key-With-Dash", "misc.key-with-dash", "misc.camelkey", "misc._under", "misc.nested[1][1][0]",
    "misc.nested.*", "misc.nested.*.*", "misc.nested.*[1]", "misc.nested.*.*.*", "misc.mixed.*",
    "misc.mixed[4].a", "misc.mixed.*.a", "misc.objs.*.a", "misc.objs.*.b", "misc.objs.*.c", "misc.objs.*['a']",
    "misc.nothing.x", "misc.nothing[0]", "misc.nothing.*", "misc.yes.*", "misc.empty_arr.*", "misc.empty_obj.*",
    "misc.empty_arr[0]", "nums", "nums.*", "nums.negzero", "env.ZERO[0]", "env.JSON_STR.a", "misc[1]",
    "inputs.count", "strategy.job-total", "strategy['fail-fast']", "vars.feature_flag", "vars.MISSING",
    "runner.os", "(github).ref", "(github.event.commits)[0].id", "fromJSON(env.JSON_STR).a[2].b",
    "fromJSON(env.JSON_STR).a.*", "fromJSON(env.JSON_STR)['E'].f", "fromJSON('[[1,[2]],[3]]').*.*",
    "fromJSON('[1,2,3]')[0]", "toJSON(github)[0]", "format('{0}', 1)[0]", "github.event.commits.*.id[0]"
  ];
  yield* fixed;
  for (let i = 0; i < 300; i++) yield randomPath();
}

function* functionCases() {
  // contains / startsWith / endsWith over typed values and real data.
  for (const a of TYPED_VALUES) {
    for (const b of TYPED_VALUES) {
      if (chance(0.2)) yield `${pick(FUNCTION_NAMES.contains)}(${a}, ${b})`;
      if (chance(0.08)) yield `${pick(FUNCTION_NAMES.startsWith)}(${a}, ${b})`;
      if (chance(0.08)) yield `${pick(FUNCTION_NAMES.endsWith)}(${a}, ${b})`;
    }
  }
  yield* [
    "contains('Hello', 'ell')", "contains('Hello', 'ELL')", "contains('', '')", "contains(null, '')",
    "contains('abc', null)", "contains(fromJSON('[1,2]'), '1')", "contains(fromJSON('[\"A\"]'), 'a')",
    "contains(matrix.flags, '-v')", "contains(matrix.flags, '')", "contains(misc.mixed, null)",
    "contains(misc.mixed, fromJSON('{\"a\":1}'))", "contains(misc.mixed, misc.mixed[4])",
    "contains(github.event.commits.*.id, 'def456')", "contains(github.event.pull_request.labels.*.name, 'enhancement')",
    "contains(github, 'ref')", "contains('Object', github)", "contains(1.5, '.5')", "contains(true, 'ru')",
    "contains(env.UNICODE, 'ÜNÏ')", "contains(needs.*.result, 'failure')", "contains(misc.empty_arr, null)",
    "startsWith(github.ref, 'refs/heads/')", "startsWith(github.ref, 'REFS/')", "startsWith('abc', '')",
    "startsWith('', 'a')", "startsWith(1, 1)", "startsWith(null, '')", "startsWith(matrix.flags, '-')",
    "startsWith('abc', fromJSON('[]'))", "endsWith(github.repository, '-world')", "endsWith('abc', 'BC')",
    "endsWith(1.50, '5')", "endsWith(true, 'E')", "endsWith('', '')", "startsWith(env.UNICODE, 'üNï')"
  ];
  // format.
  yield* [
    "format('{0}', 1)", "format('{0}{1}', 'a', 'b')", "format('{1}{0}', 'a', 'b')", "format('{{0}}', 1)",
    "format('}}{{', 1)", "format('{{{0}}}', 1)", "format('{0', 1)", "format('0}', 1)", "format('{}', 1)",
    "format('{a}', 1)", "format('{0:x}', 1)", "format('{0,5}', 1)", "format('{ 0}', 1)", "format('{0 }', 1)",
    "format('{1}', 1)", "format('{0}')", "format('plain')", "format('{00}', 'x')", "format('{01}', 'x', 'y')",
    "format('{0}', null)", "format('{0}', true)", "format('{0}', github)", "format('{0}', matrix.flags)",
    "format(env.FMT, 'a', 'b')", "format(env.FMT, 'a')", "format(env.BRACES)", "format('{0}{0}{0}', 'x')",
    "format('{{', 1)", "format('{', 1)", "format('}', 1)", "format('}}', 1)", "format('{{}}')", "format(1, 2)",
    "format(null)", "format('{0}', 1e20)", "format('{0}', 0.1)", "format('{0}', -0)", "format('{0}', 1e-5)",
    "format('{0}', 123456789012345678)", "format('{0}', nums.third)", "format('{0}', nums.pi)",
    "format('{0}', nums.int53)", "format('{0}', nums.tiny)", "format('{0}', nums.huge)", "format('{0}', NaN)",
    "format('{0}', -Infinity)", "format('{0} {1} {2} {3}', nums.zero, nums.negzero, nums.small, nums.negbig)",
    "format('{0}', github.event.pull_request.title)", "format('a{0}b{1}c{2}d', 1, '2', true)",
    "format('{2147483648}', 1)", "format('{99999999999999999999}', 1)", "format('{0}}', 1)", "format('{{0}', 1)",
    "format('x}}y{{z', 1)", "format('{0}{1}', 'only')", "format(env.QUOTE)", "format('{0}', 'it''s')"
  ];
  // join.
  yield* [
    "join(matrix.flags)", "join(matrix.flags, ', ')", "join(misc.mixed, '|')", "join('abc', '-')",
    "join(github, '-')", "join(misc.empty_arr)", "join(misc.empty_arr, '-')", "join(matrix.flags, fromJSON('[1]'))",
    "join(github.event.commits.*.id, 1)", "join(misc.nested)", "join(null)", "join(1.5)", "join(true, '-')",
    "join(github.event.commits.*.author.name, null)", "join(needs.*.result, '')", "join(fromJSON('[1,0.1,1e20]'))",
    "join(nums.*, ' ')", "join(github.event.pull_request.labels.*.name, ', ')", "join(misc.objs)",
    "join(fromJSON('[]'))", "join(matrix.flags, true)", "join(matrix.flags, 0)"
  ];
  // toJSON.
  const jsonTargets = [
    "github", "github.event", "github.event.commits", "matrix", "misc", "nums", "steps", "needs", "env",
    "null", "true", "1.5", "'a\"b\\\\c'", "env.MULTI", "misc.empty_obj", "misc.empty_arr",
    "misc.nested", "github.event.commits.*.id", "github.event.commits.*.author", "fromJSON('{\"a\":[]}')",
    "fromJSON(env.JSON_STR)", "''", "NaN", "Infinity", "-0", "1e20", "nums.frac", "inputs", "vars",
    "github.event.pull_request.labels", "misc.objs.*", "strategy", "runner", "fromJSON('\"x\"')"
  ];
  for (const t of jsonTargets) yield `${pick(FUNCTION_NAMES.toJSON)}(${t})`;
  // fromJSON.
  const jsonTexts = [
    "'1'", "'1.5'", "'-0'", "'\"str\"'", "'null'", "'true'", "'false'", "'[]'", "'{}'",
    "'[1,\"a\",null,true,{\"b\":[2]}]'", "'{\"a\":{\"b\":{\"c\":1}}}'", "''", "'  '", "'{'", "'[1,2'",
    "'tru'", "'{\"a\" 1}'", "'\"unterminated'", "'1 2'", "'{\"a\":}'", "'}'", "env.JSON_STR",
    "env.JSON_ARR", "env.BAD_JSON", "steps.build-step.outputs.json", "steps.build-step.outputs.yes", "1", "true",
    "null", "github", "'{\"b\":1,\"1\":2}'", "'{\"Key\":1,\"key\":2}'", "'\"\\\\u00e9\"'", "' [1] '",
    "'12345678901234567890'", "'1e5'", "'0.1'", "'-1.5e-7'", "'[[],[[]]]'", "env.NUM", "env.EMPTY",
    "'{\"a\":1}{'", "'[\"a\",]'", "inputs.count", "nums.big"
  ];
  for (const t of jsonTexts) {
    yield `${pick(FUNCTION_NAMES.fromJSON)}(${t})`;
    yield `toJSON(fromJSON(${t}))`;
  }
  yield* ["fromJSON(env.JSON_STR).a", "fromJSON(env.JSON_ARR)[1] == 'y'", "fromJSON('[1,2]') == fromJSON('[1,2]')",
    "fromJSON(toJSON(github)).event.number", "fromJSON(toJSON(matrix)) == matrix", "toJSON(fromJSON(toJSON(nums)))"];
  // case.
  yield* [
    "case(true, 1, 0)", "case(false, 1, 0)", "case('x', 1, 0)", "case(1, 'a', 'b')", "case(null, 'a', 'b')",
    "case(false, 1, true, 2, 3)", "case(false, 1, false, 2, 3)", "case(1 == 1, 'eq', 'ne')",
    "case(github.ref == 'refs/heads/main', 'prod', 'dev')", "case(contains(matrix.flags, '-v'), matrix.flags, 'none')",
    "case(true, fromJSON('{}'), 0)", "case(false, 1, 'true', 2, 3)", "case(!0, 'a', 'b')",
    "case(true, 'ok', fromJSON('bad'))", "case(false, fromJSON('bad'), 'ok')", "case(true, 1, 2, 3)",
    "case(true, 1)", "case(true)", "CASE(false, 1, 2)"
  ];
  // Arguments the runner never evaluates (it evaluates on demand, npm before the call).
  yield* [
    "join('abc', fromJSON('x'))", "join(fromJSON('[1]'), fromJSON('x'))", "join(fromJSON('[1,2]'), fromJSON('x'))",
    "join(github, fromJSON('x'))", "contains(github, fromJSON('x'))", "contains(misc.empty_arr, fromJSON('x'))",
    "contains(matrix.flags, fromJSON('x'))", "contains('abc', fromJSON('x'))", "startsWith(github, fromJSON('x'))",
    "endsWith(matrix.flags, fromJSON('x'))", "endsWith('a', fromJSON('x'))", "format('{0}', 1, fromJSON('x'))",
    "format('{1}', fromJSON('x'), 2)", "format('{{0}}', fromJSON('x'))", "format('{0', fromJSON('x'))",
    "format('{0:x}', fromJSON('x'))", "case(false, fromJSON('x'), true, 1, fromJSON('y'))"
  ];
  // status functions.
  yield* ["success()", "always()", "failure()", "cancelled()", "!cancelled()", "success() && always()",
    "failure() || 'fallback'", "SUCCESS()", "success(1)", "always(true)"];
}

function* syntaxCases() {
  yield* [
    "", "   ", "1 + 2", "2 * 3", "a ? b : c", "true ? 1 : 2", "1 === 1", "1 !== 1", "!", "(", ")", "()", "github.",
    "github..ref", "github[", "github['ref'", "github.ref)", "(github.ref", "contains('a')", "contains('a','b','c')",
    "unknownFunc(1)", "unknown_ctx", "unknown_ctx.x", "format()", "join()", "join(1,2,3)", "toJSON()",
    "fromJSON(1,2)", "startsWith('a')", "endsWith()", "1 2", "'a' 'b'", "1 = 1", "1 & 1", "1 | 1", "&&",
    "true &&", "|| false", ",", "[1]", "*", "github.*.", "github.'ref'", "github.1", "github.ref()",
    "github[*", "'abc'[0]", "1[0]", "null.x", "true.x", "$", "@", "#", "github.ref ==", "== 1", "!=", "<",
    "1 <", "1 < < 2", "github['a'].", "\"double\"", "'unterminated", "'a''", "github.ref-", "-github",
    "github .ref", "github. ref", "github [0]", "github.*[", "format('{0}', 1", "toJSON(github))",
    "contains(,)", "contains('a',)", "join('a',,'b')", "a.b.c", "Github.Ref", "1..2", "..5", "github.-x",
    "github._x", "github.x_-", "!(", "!()", "(((1)))", "((((((((((1))))))))))", "success", "always",
    "tojson", "fromjson(", "case(true, 1, 2, 3, 4)", "format('{0}', 1) format('x')"
  ];
  yield `${"(".repeat(20)}1${")".repeat(20)}`;
  yield `${"(".repeat(60)}1${")".repeat(60)}`;
  yield `${"!".repeat(20)}true`;
  yield `${"!".repeat(60)}true`;
  for (const n of [48, 49, 50]) {
    yield `${"!".repeat(n)}true`;
    yield `github${".x".repeat(n)}`;
    yield `${"(".repeat(n)}true${")".repeat(n)}`;
    yield Array.from({ length: n }, () => "(true").join(" && ") + ")".repeat(n);
    yield Array.from({ length: n }, () => "format('{0}', ").join("") + "1" + ")".repeat(n);
  }
  yield Array.from({ length: 20 }, () => "true").join(" && ");
  yield `'${"x".repeat(20990)}'`;
  yield `'${"x".repeat(21010)}'`;
}

// ---- main --------------------------------------------------------------------------------

function main() {
  const argv = process.argv.slice(2);
  const at = argv.indexOf("--context-out");
  if (at < 0 || !argv[at + 1]) {
    process.stderr.write("usage: node gen-expr.mjs --context-out FILE.json > cases.jsonl\n");
    process.exit(2);
  }
  writeFileSync(argv[at + 1], `${plainToJson(CONTEXT)}\n`);
  const cases = [
    ...literalCases(),
    ...coercionCases(),
    ...precedenceCases(),
    ...pathCases(),
    ...functionCases(),
    ...syntaxCases()
  ];
  for (let i = 0; i < RANDOM_TREES; i++) cases.push(randomTree());
  process.stdout.write(cases.map(expr => JSON.stringify({ expr })).join("\n") + "\n");
}

main();
