// Outbound HTTP: `fetch` (StarlingMonkey's, over `wasi:http`), with the
// host's refusals and error statuses as typed errors. The host answers
// only requests to origins in the manifest's `[capabilities]
// outbound_http`; any other is refused before a connection opens.

import { Failed } from "./errors.js";

/**
 * A request failed: no answer (`network`: refused by the host because the
 * origin is not granted, or unreachable; StarlingMonkey's `fetch` does not
 * tell the two apart, the host's log does), or an error status (`status`).
 */
export class HttpError extends Failed {
  name = "HttpError";
  /**
   * @param {string} url
   * @param {"network" | "status"} kind
   * @param {string} detail
   * @param {number} [status]
   */
  constructor(url, kind, detail, status) {
    super(`HTTP ${kind === "status" ? `status ${status}` : kind} for ${url}: ${detail}`);
    /** The URL requested. */
    this.url = url;
    /** `network` (no answer: not granted, or unreachable) or `status` (4xx/5xx from {@link request}). */
    this.kind = kind;
    /** The HTTP status, for `status`. */
    this.status = status;
  }
}

/**
 * Sends a request with `fetch`; returns the response when its status is
 * below 400. Await it inside an `async` handler.
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export async function request(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    throw new HttpError(url, "network", text);
  }
  if (response.status >= 400) {
    const body = await response.text().catch(() => "");
    throw new HttpError(url, "status", body.slice(0, 512), response.status);
  }
  return response;
}

/**
 * `request`, then the body parsed as JSON.
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<unknown>}
 */
export async function json(url, init) {
  return (await request(url, init)).json();
}
