// Typed errors: how a step reports that it did not succeed, and why the
// host refused an access.

/** Why a step did not succeed; the message is what the host records. */
export class StepError extends Error {}

/**
 * Retry later at the normal interval; not an error. The object keeps
 * `backend_code = 0` and gets the message as its `backend_status`.
 */
export class Deferred extends StepError {
  name = "Deferred";
}

/**
 * The step failed: the object gets `backend_code = 2` and the message as
 * `backend_status`, and is retried with backoff.
 */
export class Failed extends StepError {
  name = "Failed";
}

/** The host refused or could not complete a model access. */
export class AccessError extends Failed {
  name = "AccessError";
  /**
   * @param {"denied" | "not-found" | "invalid"} kind
   * @param {string} detail the host's explanation
   */
  constructor(kind, detail) {
    const prefix = { denied: "access denied", "not-found": "not found", invalid: "invalid access" }[kind];
    super(`${prefix}: ${detail}`);
    /** Which refusal: `denied`, `not-found` or `invalid`. */
    this.kind = kind;
    /** The host's explanation. */
    this.detail = detail;
  }
}

/** An object's field is missing or of another type than the model says. */
export class FieldError extends Failed {
  name = "FieldError";
}

/**
 * The error a host call threw, as an {@link AccessError} when it is an
 * `access-error` (componentize-js throws `{ payload: { tag, val } }`).
 * @param {unknown} e
 * @returns {unknown}
 */
export function accessError(e) {
  const payload = e && typeof e === "object" && "payload" in e ? /** @type {any} */ (e).payload : undefined;
  if (payload && typeof payload === "object" && typeof payload.tag === "string") {
    return new AccessError(payload.tag, String(payload.val ?? ""));
  }
  return e;
}

/**
 * The text the host records for a thrown value: the message of an Error
 * (with its name unless it is a {@link StepError}), else the value as text.
 * @param {unknown} e
 * @returns {string}
 */
export function message(e) {
  if (e instanceof StepError) return e.message;
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  return String(e);
}
