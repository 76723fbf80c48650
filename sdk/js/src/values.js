// Conversions between JavaScript values and the WIT `value` variant.

import { FieldError } from "./errors.js";

/**
 * A WIT `value` as JavaScript: `null`, a boolean, a number (integers
 * beyond 2^53 as bigint) or a string.
 * @param {{ tag: string, val?: unknown }} value
 * @returns {import("./index.js").Value}
 */
export function fromWit(value) {
  switch (value.tag) {
    case "null":
      return null;
    case "integer": {
      const big = /** @type {bigint} */ (value.val);
      const n = Number(big);
      return Number.isSafeInteger(n) ? n : big;
    }
    default:
      return /** @type {boolean | number | string} */ (value.val);
  }
}

/**
 * A JavaScript value as a WIT `value`: whole numbers are integers, other
 * numbers floats.
 * @param {import("./index.js").Value} value
 */
export function toWit(value) {
  if (value === null || value === undefined) return { tag: "null" };
  switch (typeof value) {
    case "boolean":
      return { tag: "boolean", val: value };
    case "bigint":
      return { tag: "integer", val: value };
    case "number":
      return Number.isInteger(value) ? { tag: "integer", val: BigInt(value) } : { tag: "float", val: value };
    case "string":
      return { tag: "text", val: value };
    default:
      throw new FieldError(`a field value must be null, a boolean, a number or a string, not ${typeof value}`);
  }
}

/**
 * @param {Array<[string, { tag: string, val?: unknown }]>} fields
 * @returns {Record<string, import("./index.js").Value>}
 */
export function fieldsFromWit(fields) {
  /** @type {Record<string, import("./index.js").Value>} */
  const out = {};
  for (const [name, value] of fields) out[name] = fromWit(value);
  return out;
}

/**
 * @param {Record<string, import("./index.js").Value>} fields
 * @returns {Array<[string, { tag: string, val?: unknown }]>}
 */
export function fieldsToWit(fields) {
  return Object.entries(fields).map(([name, value]) => [name, toWit(value)]);
}

/**
 * An object id for the host (a u64).
 * @param {number | bigint} id
 */
export function witId(id) {
  return typeof id === "bigint" ? id : BigInt(id);
}

/**
 * An object id from the host, as a number when it is safe.
 * @param {bigint | number} id
 * @returns {number}
 */
export function jsId(id) {
  return Number(id);
}
