// Model policies, pull steps and event steps: their exports, and
// declarative model access (find, create, change and delete objects of the
// service's models and of models granted for writing). Every write is a
// user-like change: it makes the object pending for its sync steps.

import * as host from "syncplane:plugin/declarative@0.2.0";

import { accessError, message } from "./errors.js";
import { fieldsFromWit, fieldsToWit, jsId, toWit, witId } from "./values.js";

/**
 * @template R
 * @param {() => R} call
 * @returns {R}
 */
function call(call) {
  try {
    return call();
  } catch (e) {
    throw accessError(e);
  }
}

/** @param {any} raw @returns {import("./index.js").Found} */
function found(raw) {
  return { id: jsId(raw.id), model: raw.model, fields: fieldsFromWit(raw.fields) };
}

/**
 * Reads an object of the service's models (or of a model granted for reading).
 * @param {number} id
 */
export function get(id) {
  return found(call(() => host.get(witId(id))));
}

/**
 * The objects of `model` (and the models inheriting it) whose `field`
 * equals `value`.
 * @param {string} model
 * @param {string} field
 * @param {import("./index.js").Value} value
 */
export function find(model, field, value) {
  return call(() => host.find(model, field, toWit(value))).map(found);
}

/**
 * Creates an object; returns its id. `no_sync` and `write_protect` may be
 * set to true among the fields.
 * @param {string} model
 * @param {Record<string, import("./index.js").Value>} fields
 * @returns {number}
 */
export function create(model, fields) {
  return jsId(call(() => host.create(model, fieldsToWit(fields))));
}

/**
 * Changes declarative fields of an object; with `alwaysUpdateTimestamp`
 * it counts as changed even when no value differs.
 * @param {number} id
 * @param {Record<string, import("./index.js").Value>} fields
 * @param {boolean} [alwaysUpdateTimestamp]
 */
export function update(id, fields, alwaysUpdateTimestamp = false) {
  call(() => host.update(witId(id), fieldsToWit(fields), alwaysUpdateTimestamp));
}

/**
 * Marks an object deleted; its sync steps tear it down.
 * @param {number} id
 */
export function remove(id) {
  call(() => host.delete(witId(id)));
}

export { remove as delete };

/**
 * Runs a handler, turning anything it throws into the world's error text.
 * @param {() => void | Promise<void>} handler
 */
async function asStringError(handler) {
  try {
    await handler();
  } catch (e) {
    throw { payload: message(e) };
  }
}

/**
 * The exports of the `model-policy` world for a policy over `target`:
 * `export const { handleCreate, handleUpdate, handleDelete } = exportModelPolicy(Model, policy)`.
 * @template T
 * @param {import("./index.js").ModelDef<T>} target
 * @param {import("./index.js").ModelPolicy<T>} policy
 */
export function exportModelPolicy(target, policy) {
  /** @param {((o: any) => void | Promise<void>) | undefined} handler */
  const run = (handler) => (/** @type {any} */ raw) =>
    asStringError(async () => {
      const o = found(raw);
      await handler?.call(policy, target.fromRaw(o.id, o.model, o.fields));
    });
  return {
    handleCreate: run(policy.handleCreate),
    handleUpdate: run(policy.handleUpdate),
    handleDelete: run(policy.handleDelete),
  };
}

/**
 * The export of the `pull-step` world: `export const { pullRecords } = exportPullStep(step)`.
 * @param {import("./index.js").PullStep} step
 */
export function exportPullStep(step) {
  return { pullRecords: () => asStringError(() => step.pullRecords()) };
}

/**
 * The export of the `event-step` world: `export const { processEvent } = exportEventStep(step)`.
 * @param {import("./index.js").EventStep} step
 */
export function exportEventStep(step) {
  return {
    processEvent: (/** @type {any} */ event) =>
      asStringError(() =>
        step.processEvent({
          topic: event.topic,
          key: event.key ?? null,
          value: event.value,
          timestamp: event.timestamp,
          json: () => JSON.parse(event.value),
        }),
      ),
  };
}
