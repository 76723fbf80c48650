// The syncplane SDK for JavaScript service authors (built with
// componentize-js). What every kind of step uses: models, typed errors,
// logging, configuration and secrets. Sync steps add `syncplane-sdk/sync`;
// model policies, pull steps and event steps `syncplane-sdk/declarative`;
// outbound HTTP is `syncplane-sdk/http`.

import { log as hostLog } from "syncplane:plugin/log@0.2.0";
import { get as configGet } from "syncplane:plugin/config@0.2.0";
import { get as secretGet } from "syncplane:plugin/secrets@0.2.0";

import { Failed } from "./errors.js";

export { AccessError, Deferred, Failed, FieldError, StepError, message } from "./errors.js";
export { model } from "./models.js";

/** @param {"trace" | "debug" | "info" | "warn" | "error"} level */
function logAt(level) {
  /**
   * @param {string} message
   * @param {Record<string, unknown>} [fields]
   */
  return (message, fields = {}) =>
    hostLog(
      level,
      message,
      Object.entries(fields).map(([key, value]) => [key, String(value)]),
    );
}

/**
 * Structured logging into the host's log, tagged with the service, step
 * and object: `log.info("HelloWorldService has been updated!", { object: o,
 * hello_from: o.hello_from })`. Field values become text with `String()`.
 */
export const log = Object.freeze({
  trace: logAt("trace"),
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
});

/** A configuration value or a secret could not be read. */
export class SettingError extends Failed {
  name = "SettingError";
  /**
   * @param {"config value" | "secret"} setting
   * @param {string} key the name asked for
   * @param {"denied" | "not-set" | "invalid"} kind
   * @param {string} [detail]
   */
  constructor(setting, key, kind, detail = "") {
    let text;
    if (kind === "denied") text = `${setting} \`${key}\`: access denied`;
    else if (kind === "not-set") {
      const command =
        setting === "config value" ? `syncplane service config SERVICE ${key}=VALUE` : `syncplane service secret SERVICE ${key}`;
      text = `${setting} \`${key}\` is not set (the operator sets it with \`${command}\`)`;
    } else text = `${setting} \`${key}\`: invalid request`;
    super(detail ? `${text}: ${detail}` : text);
    this.setting = setting;
    this.key = key;
    this.kind = kind;
  }
}

/**
 * @param {"config value" | "secret"} setting
 * @param {string} key
 * @param {unknown} e
 */
function settingError(setting, key, e) {
  const payload = e && typeof e === "object" && "payload" in e ? /** @type {any} */ (e).payload : undefined;
  if (!payload || typeof payload.tag !== "string") return e;
  const kind = payload.tag === "denied" ? "denied" : payload.tag === "not-found" ? "not-set" : "invalid";
  return new SettingError(setting, key, kind, String(payload.val ?? ""));
}

/**
 * The configuration value `key`, or `null` when the operator has not set
 * it. Throws {@link SettingError} (`denied`) for a name the manifest's
 * `[capabilities] config` does not list.
 * @param {string} key
 * @returns {string | null}
 */
export function config(key) {
  try {
    return configGet(key) ?? null;
  } catch (e) {
    throw settingError("config value", key, e);
  }
}

/**
 * The configuration value `key`, which the service cannot work without;
 * as {@link config}, and throws `not-set` when the operator has not set it.
 * @param {string} key
 * @returns {string}
 */
export function requireConfig(key) {
  const value = config(key);
  if (value === null) throw new SettingError("config value", key, "not-set");
  return value;
}

/**
 * The secret `key`. The host redacts secret values from logs, statuses and
 * errors, but only as exact matches: do not log a secret or anything made
 * from it. Throws {@link SettingError} (`denied`, `not-set`).
 * @param {string} key
 * @returns {string}
 */
export function secret(key) {
  try {
    return secretGet(key);
  } catch (e) {
    throw settingError("secret", key, e);
  }
}
