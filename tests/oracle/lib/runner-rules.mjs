// The few rules where GitHub's runner (C#) and the npm package are known to differ, written out
// so the oracle can *notice* when a case touches them (see eval-expr.mjs). Nothing here changes
// what the npm package computes: these functions only feed the `notes` of a result.
//
// Sources: /work/shared/semantics.md 1.1 (number text) and 1.5 (number to string).

/** .NET `ToString("G15", InvariantCulture)`, with -0 printed as 0 as measured on GitHub. */
export function g15(n) {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (n === 0) return "0";
  const [mantissa, exponentText] = n.toExponential(14).split("e");
  const exponent = parseInt(exponentText, 10);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "").replace(/0+$/, "");
  if (exponent >= 15 || exponent <= -5) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${m}E${exponent < 0 ? "-" : "+"}${e}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return sign + digits + "0".repeat(exponent + 1 - digits.length);
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

/**
 * The runner's `ExpressionUtility.ParseNumber`: decimal text (overflow rejected), `0x` hex and
 * `0o` octal as signed 32-bit, `Infinity`/`-Infinity`; everything else NaN. The npm package uses
 * JS `Number()` instead, which also takes `0X1F`, `0b11`, unbounded hex and `1e309`.
 */
export function runnerParseNumber(text) {
  const s = text.trim();
  if (s === "") return 0;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) {
    const v = Number(s);
    return Number.isFinite(v) ? v : NaN;
  }
  if (/^0x[0-9a-fA-F]+$/.test(s)) {
    const hex = s.slice(2).replace(/^0+/, "");
    return hex.length > 8 ? NaN : parseInt(hex || "0", 16) | 0;
  }
  if (/^0o[0-7]+$/.test(s)) {
    const v = parseInt(s.slice(2), 8);
    return v > 0xffffffff ? NaN : v | 0;
  }
  if (s === "Infinity") return Infinity;
  if (s === "-Infinity") return -Infinity;
  return NaN;
}

/** Whether two numbers are the same value for our purposes (NaN equals NaN, -0 equals 0). */
export function sameNumber(a, b) {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/**
 * Whether a format string uses a format specifier or padding (`{0:x}`, `{0,5}`, `{0 }`): the
 * runner rejects these, the npm package ignores what follows the digits.
 */
export function hasFormatSpecifier(format) {
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== "{") continue;
    if (format[i + 1] === "{") {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < format.length && format[j] >= "0" && format[j] <= "9") j++;
    const close = format.indexOf("}", j);
    if (j > i + 1 && close > j) return true;
  }
  return false;
}

/** Whether JS would reorder this key ahead of others (an array-index-like property name). */
export function isIntegerLikeKey(key) {
  return /^(0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}

/**
 * The argument indices a valid format string references, scanning as the runner's Format does;
 * `undefined` when the runner rejects the string before evaluating any argument.
 */
export function formatReferences(format) {
  const referenced = new Set();
  let index = 0;
  while (index < format.length) {
    const lbrace = format.indexOf("{", index);
    const rbrace = format.indexOf("}", index);
    if (lbrace >= 0 && (rbrace < 0 || rbrace > lbrace)) {
      if (format[lbrace + 1] === "{") {
        index = lbrace + 2;
        continue;
      }
      let end = lbrace + 1;
      while (end < format.length && format[end] >= "0" && format[end] <= "9") end++;
      const digits = format.slice(lbrace + 1, end);
      if (digits === "" || Number(digits) > 255 || format[end] !== "}") return undefined;
      referenced.add(Number(digits));
      index = end + 1;
    } else if (rbrace >= 0) {
      if (format[rbrace + 1] !== "}") return undefined;
      index = rbrace + 2;
    } else {
      break;
    }
  }
  return referenced;
}

/**
 * Whether the runner evaluates argument `index` of a call, given the values of the arguments
 * before it. The runner's functions evaluate their arguments on demand (actions/runner
 * `Expressions2/Sdk/Functions/*.cs`); the npm package evaluates all of them before the call.
 * Argument 0 is always evaluated. `kinds` gives the package's data.Kind values.
 */
export function runnerEvaluatesArgument(name, values, index, count, kinds) {
  if (index === 0) return true;
  const first = values[0];
  const isArray = first.kind === kinds.Array;
  switch (name) {
    case "contains":
      return first.primitive || (isArray && first.values().length > 0);
    case "startswith":
    case "endswith":
      return first.primitive;
    case "join":
      return isArray && first.values().length > 1;
    case "format": {
      const referenced = formatReferences(first.coerceString());
      // A format string the runner rejects fails before any argument: both sides error anyway.
      return referenced === undefined || referenced.has(index - 1);
    }
    case "case":
      for (let p = 0; p < count - 1; p += 2) {
        if (p === index) return true;
        // A non-boolean predicate fails the runner right there, as it fails the package.
        if (values[p].kind !== kinds.Boolean) return true;
        if (values[p].value) return index === p + 1;
        if (index === p + 1) return false;
      }
      return index === count - 1;
    default:
      return true;
  }
}

/**
 * Depth of the tree the runner's parser would build (its MaxDepth of 50 applies to this):
 * parentheses add no node, and nested `&&` (or `||`) merge into one node.
 */
export function runnerTreeDepth(node, ast) {
  const depth = child => runnerTreeDepth(child, ast);
  if (node instanceof ast.Grouping) return depth(node.group);
  if (node instanceof ast.Unary) return 1 + depth(node.expr);
  if (node instanceof ast.Binary) return 1 + Math.max(depth(node.left), depth(node.right));
  if (node instanceof ast.IndexAccess) return 1 + Math.max(depth(node.expr), depth(node.index));
  if (node instanceof ast.FunctionCall) return 1 + Math.max(0, ...node.args.map(depth));
  if (node instanceof ast.Logical) {
    const flat = [];
    const flatten = n => {
      let inner = n;
      while (inner instanceof ast.Grouping) inner = inner.group;
      if (inner instanceof ast.Logical && inner.operator.type === node.operator.type) {
        inner.args.forEach(flatten);
      } else {
        flat.push(n);
      }
    };
    node.args.forEach(flatten);
    return 1 + Math.max(...flat.map(depth));
  }
  return 1;
}

/**
 * Whether `text` is one complete JSON value followed by more non-blank text (`1 2`, `{}{`). The
 * runner's fromJSON (`JToken.ReadFrom`) reads the first value and ignores the rest;
 * `JSON.parse` rejects the whole text.
 */
export function hasTrailingTextAfterJson(text) {
  let i = 0;
  while (i < text.length && /\s/.test(text[i])) i++;
  let end = i;
  if (text[i] === "{" || text[i] === "[" || text[i] === '"') {
    let depth = 0;
    let inString = false;
    for (end = i; end < text.length; end++) {
      const c = text[end];
      if (inString) {
        if (c === "\\") end++;
        else if (c === '"') inString = false;
      } else if (c === '"') {
        inString = true;
      } else if (c === "{" || c === "[") {
        depth++;
      } else if (c === "}" || c === "]") {
        depth--;
      }
      if (!inString && depth === 0) break;
    }
    end++;
  } else {
    while (end < text.length && !/[\s,\]}{[]/.test(text[end])) end++;
  }
  if (end <= i || text.slice(end).trim() === "") return false;
  try {
    JSON.parse(text.slice(i, end));
    return true;
  } catch {
    return false;
  }
}
