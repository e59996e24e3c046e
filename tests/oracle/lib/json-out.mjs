// JSON writing shared by the oracle scripts, in the shapes `runnel eval` uses.
//
// JSON.stringify is not enough: it reorders integer-like object keys, writes -0 as 0 and NaN or
// the infinities as null. Plain values (from JSON.parse or the generator) and the expression
// package's data classes are both accepted.
import { data } from "@actions/expressions";

/** Writes a plain JS value as JSON, keeping -0 (as `-0.0`) and NaN/±Infinity (as strings). */
export function plainToJson(value) {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return numberToJson(value);
    case "string":
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(plainToJson).join(",")}]`;
  const pairs = Object.keys(value).map(k => `${JSON.stringify(k)}:${plainToJson(value[k])}`);
  return `{${pairs.join(",")}}`;
}

/** Writes an expression result (data.ExpressionData) as JSON, keeping the object's key order. */
export function expressionDataToJson(d) {
  switch (d.kind) {
    case data.Kind.Null:
      return "null";
    case data.Kind.Boolean:
      return d.value ? "true" : "false";
    case data.Kind.Number:
      return numberToJson(d.value);
    case data.Kind.String:
      return JSON.stringify(d.value);
    case data.Kind.Array:
      return `[${d.values().map(expressionDataToJson).join(",")}]`;
    case data.Kind.Dictionary: {
      const pairs = d.pairs().map(p => `${JSON.stringify(p.key)}:${expressionDataToJson(p.value)}`);
      return `{${pairs.join(",")}}`;
    }
  }
  throw new Error(`unknown expression data kind ${d.kind}`);
}

function numberToJson(n) {
  if (Number.isNaN(n)) return '"NaN"';
  if (n === Infinity) return '"Infinity"';
  if (n === -Infinity) return '"-Infinity"';
  if (Object.is(n, -0)) return "-0.0";
  return JSON.stringify(n);
}

/** Builds expression data from a plain JS value (as parsed from a context JSON file). */
export function plainToExpressionData(value) {
  if (value === null || value === undefined) return new data.Null();
  switch (typeof value) {
    case "boolean":
      return new data.BooleanData(value);
    case "number":
      return new data.NumberData(value);
    case "string":
      return new data.StringData(value);
  }
  if (Array.isArray(value)) return new data.Array(...value.map(plainToExpressionData));
  return new data.Dictionary(
    ...Object.keys(value).map(key => ({ key, value: plainToExpressionData(value[key]) }))
  );
}
