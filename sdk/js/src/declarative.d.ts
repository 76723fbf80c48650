// Types of `syncplane-sdk/declarative`: model policies, pull and event
// steps, and declarative model access.
import type { EventStep, Found, ModelDef, ModelPolicy, PullStep, Value } from "./index.js";

/** Reads an object of the service's models (or granted for reading). @throws {AccessError} */
export function get(id: number): Found;
/** The objects of `model` whose `field` equals `value`. @throws {AccessError} */
export function find(model: string, field: string, value: Value): Found[];
/** Creates an object; returns its id. @throws {AccessError} */
export function create(model: string, fields: Record<string, Value>): number;
/** Changes declarative fields of an object. @throws {AccessError} */
export function update(id: number, fields: Record<string, Value>, alwaysUpdateTimestamp?: boolean): void;
/** Marks an object deleted; its sync steps tear it down. @throws {AccessError} */
export function remove(id: number): void;
export { remove as delete };

/** The exports of the `model-policy` world. */
export function exportModelPolicy<T>(
  target: ModelDef<T>,
  policy: ModelPolicy<T>,
): { handleCreate(obj: unknown): Promise<void>; handleUpdate(obj: unknown): Promise<void>; handleDelete(obj: unknown): Promise<void> };
/** The export of the `pull-step` world. */
export function exportPullStep(step: PullStep): { pullRecords(): Promise<void> };
/** The export of the `event-step` world. */
export function exportEventStep(step: EventStep): { processEvent(event: unknown): Promise<void> };
