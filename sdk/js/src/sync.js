// Sync steps: `exportSyncStep` and model access through the `models`
// interface (follow links, read granted models, write feedback).

import { get as hostGet, find as hostFind, getLink, setFeedback } from "syncplane:plugin/models@0.2.0";

import { Deferred, accessError, message } from "./errors.js";
import { access } from "./models.js";
import { fieldsFromWit, fieldsToWit, jsId, toWit, witId } from "./values.js";

/** @param {any} raw */
function convert(raw) {
  return { id: jsId(raw.id), model: raw.model, fields: fieldsFromWit(raw.fields) };
}

/**
 * @template R
 * @param {() => R} call
 * @returns {R}
 */
function host(call) {
  try {
    return call();
  } catch (e) {
    throw accessError(e);
  }
}

access.getLink = (id, field) => {
  const raw = host(() => getLink(witId(id), field));
  return raw === undefined || raw === null ? null : convert(raw);
};
access.setFeedback = (id, fields) => host(() => setFeedback(witId(id), fieldsToWit(fields)));

/**
 * Reads any object by id as `target`. The host allows the observed object,
 * objects reached through links, and objects of models the manifest grants
 * for reading.
 * @template T
 * @param {import("./index.js").ModelDef<T>} target
 * @param {number} id
 * @returns {import("./index.js").Object<T>}
 */
export function get(target, id) {
  const raw = convert(host(() => hostGet(witId(id))));
  return target.fromRaw(raw.id, raw.model, raw.fields);
}

/**
 * The objects of `target` (and the models inheriting it) whose `field`
 * equals `value`; `target.NAME` must be granted for reading.
 * @template T
 * @param {import("./index.js").ModelDef<T>} target
 * @param {string} field
 * @param {import("./index.js").Value} value
 * @returns {Array<import("./index.js").Object<T>>}
 */
export function find(target, field, value) {
  return host(() => hostFind(target.NAME, field, toWit(value))).map((/** @type {any} */ raw) => {
    const o = convert(raw);
    return target.fromRaw(o.id, o.model, o.fields);
  });
}

/**
 * The exports of the `sync-step` world for a step over `target`:
 * `export const { syncRecord, deleteRecord } = exportSyncStep(Model, step)`.
 * A thrown {@link Deferred} defers; anything else thrown fails the object
 * with its message.
 * @template T
 * @param {import("./index.js").ModelDef<T>} target
 * @param {import("./index.js").SyncStep<T>} step
 */
export function exportSyncStep(target, step) {
  /** @param {((o: any) => void | Promise<void>) | undefined} handler */
  const run = (handler) => async (/** @type {any} */ raw) => {
    try {
      const o = convert(raw);
      await handler?.call(step, target.fromRaw(o.id, o.model, o.fields));
    } catch (e) {
      // componentize-js returns a thrown `payload` as the result's error.
      const payload = e instanceof Deferred ? { tag: "deferred", val: e.message } : { tag: "failed", val: message(e) };
      throw { payload };
    }
  };
  return { syncRecord: run(step.syncRecord), deleteRecord: run(step.deleteRecord) };
}
