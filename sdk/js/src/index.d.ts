// Types of the syncplane SDK for JavaScript (`syncplane-sdk`).

/** A field value as the host stores it; integers beyond 2^53 are bigint. */
export type Value = null | boolean | number | bigint | string;

/** What every object a step is handed has, beside its model's fields. */
export interface Model {
  /** The object id. */
  readonly id: number;
  /** The object's most specialised (leaf) model. */
  readonly model: string;
  /** All fields as the host sent them (links as `<name>_id`). */
  readonly fields: Readonly<Record<string, Value>>;
  /**
   * Follows the link `field` (e.g. `"owner"`) and reads the linked object
   * as `target`. Sync steps only (`syncplane-sdk/sync`).
   * @throws {Failed} the link is empty; {@link AccessError} the host refused.
   */
  follow<T>(field: string, target: ModelDef<T>): Object<T>;
  /**
   * Writes feedback fields of this object. Sync steps only, on the object
   * they observe.
   * @throws {AccessError} the host refused, e.g. for a declarative field.
   */
  setFeedback(fields: Record<string, Value>): void;
  /** The `name` field when there is one, else `Model id`. */
  toString(): string;
}

/** An object of model `T`: its typed fields and {@link Model}'s. */
export type Object<T> = T & Model;

/** How a field is declared to {@link model}. */
export interface FieldSpec {
  /** `string`, `boolean`, `integer`, `float` or `link` (an id). */
  type: "string" | "boolean" | "integer" | "float" | "link";
  /** Whether every object has it (else it may be `null`). */
  required?: boolean;
  /** A list of values (`repeated` in xproto). */
  repeated?: boolean;
  /** The values it may take, when xproto gives `choices`. */
  choices?: readonly Value[];
}

/** A model as {@link model} declares it. */
export interface ModelDef<T> {
  /** The model's name in xproto. */
  readonly NAME: string;
  /** Its feedback fields, the only ones a sync step may write. */
  readonly FEEDBACK: readonly string[];
  /** Its declared fields. */
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /**
   * Reads an object's fields as this model.
   * @throws {FieldError} a field is missing or of another type.
   */
  fromRaw(id: number, leaf: string, fields: Record<string, Value>): Object<T>;
}

/** Declares a model: its xproto name and fields (`syncplane gen typescript` writes these). */
export function model<T>(name: string, spec: { fields: Record<string, FieldSpec>; feedback?: readonly string[] }): ModelDef<T>;

/** Why a step did not succeed; the message is what the host records. */
export class StepError extends Error {}
/** Retry later at the normal interval; not an error (`backend_code` stays 0). */
export class Deferred extends StepError {}
/** The step failed: `backend_code = 2`, the message as `backend_status`, retried with backoff. */
export class Failed extends StepError {}
/** The host refused or could not complete a model access. */
export class AccessError extends Failed {
  readonly kind: "denied" | "not-found" | "invalid";
  readonly detail: string;
}
/** An object's field is missing or of another type than the model says. */
export class FieldError extends Failed {}
/** A configuration value or a secret could not be read; never contains a secret. */
export class SettingError extends Failed {
  readonly setting: "config value" | "secret";
  readonly key: string;
  readonly kind: "denied" | "not-set" | "invalid";
}
/** The text the host records for a thrown value. */
export function message(e: unknown): string;

type LogFn = (message: string, fields?: Record<string, unknown>) => void;
/** Structured logging into the host's log. */
export const log: Readonly<{ trace: LogFn; debug: LogFn; info: LogFn; warn: LogFn; error: LogFn }>;

/** The configuration value `key`, or `null` when not set. @throws {SettingError} */
export function config(key: string): string | null;
/** The configuration value `key`, which must be set. @throws {SettingError} */
export function requireConfig(key: string): string;
/** The secret `key`. @throws {SettingError} */
export function secret(key: string): string;

/** A sync step over objects of `T`: throw {@link Deferred} or {@link Failed} (or anything). */
export interface SyncStep<T> {
  /** Brings the backend in line with `o`; must be idempotent. */
  syncRecord(o: Object<T>): void | Promise<void>;
  /** Tears down what the backend holds for the deleted `o`. */
  deleteRecord?(o: Object<T>): void | Promise<void>;
}

/** A model policy over objects of `T`; anything thrown is the handler's error. */
export interface ModelPolicy<T> {
  handleCreate?(o: Object<T>): void | Promise<void>;
  handleUpdate?(o: Object<T>): void | Promise<void>;
  handleDelete?(o: Object<T>): void | Promise<void>;
}

/** A pull step, called every interval the manifest gives. */
export interface PullStep {
  pullRecords(): void | Promise<void>;
}

/** One event as the bus delivered it. */
export interface Event {
  readonly topic: string;
  readonly key: string | null;
  /** The payload, as text (often JSON). */
  readonly value: string;
  /** When it was published, seconds since the epoch. */
  readonly timestamp: number;
  /** The payload parsed as JSON. */
  json(): unknown;
}

/** An event step: turns events of subscribed topics into model changes. */
export interface EventStep {
  processEvent(event: Event): void | Promise<void>;
}

/** An object as declarative access returns it, untyped. */
export interface Found {
  readonly id: number;
  readonly model: string;
  readonly fields: Readonly<Record<string, Value>>;
}
