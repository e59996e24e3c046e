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
