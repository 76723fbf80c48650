// Typed models: `model(name, spec)` describes a model's fields; objects
// the host hands a step are read through it.

import { FieldError, Failed } from "./errors.js";

/**
 * How the model-access interface of the world is reached; `sync.js`
 * installs it for sync steps (the other worlds have no `models`
 * interface, so objects there cannot follow links themselves).
 * @type {{ getLink?: (id: number, field: string) => any, setFeedback?: (id: number, fields: Record<string, any>) => void }}
 */
export const access = {};

/** @param {unknown} value @param {string} type */
function fits(value, type) {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
    case "link":
      return (typeof value === "number" && Number.isInteger(value)) || typeof value === "bigint";
    case "float":
      return typeof value === "number" || typeof value === "bigint";
    default:
      return true;
  }
}

const objectMethods = {
  /**
   * Follows the link `field` (e.g. `"owner"`) and reads the linked object,
   * in its leaf model, as `target`: XOS's `o.owner.leaf_model`. Sync steps
   * only.
   * @this {any}
   * @param {string} field
   * @param {any} target
   */
  follow(field, target) {
    if (!access.getLink) {
      throw new Failed("follow() needs the `models` interface: import from \"syncplane-sdk/sync\" in a sync step");
    }
    const raw = access.getLink(this.id, field);
    if (raw === undefined || raw === null) throw new Failed(`link \`${field}\` of ${this.model} ${this.id} is empty`);
    return target.fromRaw(raw.id, raw.model, raw.fields);
  },
  /**
   * Writes feedback fields of this object (`feedback_state` in xproto).
   * Sync steps only, on the object they observe.
   * @this {any}
   * @param {Record<string, any>} fields
   */
  setFeedback(fields) {
    if (!access.setFeedback) {
      throw new Failed("setFeedback() needs the `models` interface: import from \"syncplane-sdk/sync\" in a sync step");
    }
    access.setFeedback(this.id, fields);
  },
  /**
   * Like XOS's `str(o)`: the `name` field when there is one, else `Model id`.
   * @this {any}
   */
  toString() {
    const name = this.fields?.name;
    return typeof name === "string" && name ? name : `${this.model} ${this.id}`;
  },
};

/**
 * Declares a model: its xproto name and its fields. `syncplane gen
 * typescript` writes these (and their types) from xproto.
 *
 * @template T
 * @param {string} name the model's name in xproto
 * @param {{ fields: Record<string, { type: string, required?: boolean, repeated?: boolean, choices?: readonly unknown[] }>, feedback?: readonly string[] }} spec
 * @returns {import("./index.js").ModelDef<T>}
 */
export function model(name, spec) {
  const feedback = Object.freeze([...(spec.feedback ?? [])]);
  const fromRaw = (/** @type {any} */ id, /** @type {string} */ leaf, /** @type {Record<string, any>} */ fields) => {
    const objectId = Number(id);
    /** @type {Record<string, any>} */
    const typed = {};
    for (const [field, { type, required, repeated, choices }] of Object.entries(spec.fields)) {
      const value = fields[field];
      if (value === undefined || value === null) {
        if (required) throw new FieldError(`field \`${field}\` of ${leaf} ${objectId} is missing`);
        typed[field] = repeated ? [] : null;
        continue;
      }
      const ok = repeated
        ? Array.isArray(value) && value.every((v) => fits(v, type))
        : fits(value, type) && (!choices || choices.includes(value));
      if (!ok) {
        throw new FieldError(`field \`${field}\` of ${leaf} ${objectId} is ${JSON.stringify(String(value))}, not ${type}`);
      }
      typed[field] = value;
    }
    const object = Object.create(objectMethods);
    Object.assign(object, typed, { id: objectId, model: leaf, fields: Object.freeze({ ...fields }) });
    return /** @type {any} */ (Object.freeze(object));
  };
  return Object.freeze({ NAME: name, FEEDBACK: feedback, fields: spec.fields, fromRaw });
}
