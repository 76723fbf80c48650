// Types of `syncplane-sdk/sync`: sync steps and their model access.
import type { ModelDef, Object, SyncStep, Value } from "./index.js";

/** Reads any object the step may read by id as `target`. @throws {AccessError} */
export function get<T>(target: ModelDef<T>, id: number): Object<T>;
/** The objects of `target` whose `field` equals `value` (granted for reading). @throws {AccessError} */
export function find<T>(target: ModelDef<T>, field: string, value: Value): Array<Object<T>>;
/** The exports of the `sync-step` world: `export const { syncRecord, deleteRecord } = exportSyncStep(Model, step)`. */
export function exportSyncStep<T>(
  target: ModelDef<T>,
  step: SyncStep<T>,
): { syncRecord(obj: unknown): Promise<void>; deleteRecord(obj: unknown): Promise<void> };
