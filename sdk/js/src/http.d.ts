// Types of `syncplane-sdk/http`.
import { Failed } from "./index.js";

/**
 * A request failed: no answer (`network`: the origin is not granted, or
 * unreachable; `fetch` does not tell them apart, the host's log does), or
 * 4xx/5xx (`status`).
 */
export class HttpError extends Failed {
  readonly url: string;
  readonly kind: "network" | "status";
  readonly status?: number;
}
/** `fetch`, with failures as {@link HttpError}; resolves for statuses below 400. */
export function request(url: string, init?: RequestInit): Promise<Response>;
/** {@link request}, then the body as JSON. */
export function json(url: string, init?: RequestInit): Promise<unknown>;
