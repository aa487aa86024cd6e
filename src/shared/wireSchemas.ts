/**
 * Schema shapes that fastify's response serializer writes directly. It writes an `anyOf` only by
 * running a validator per field to pick the branch, compiled on the route's first response (a
 * third of a second for the executions route, paid by the first caller after every start).
 * These are checked by ajv, never by TypeBox's own compiler (protocol messages use TypeBox's).
 */
import { Kind, Type, type Static, type TSchema, type TUnion, type TNull, type TUnsafe } from '@sinclair/typebox';

const PRIMITIVES = new Set(['string', 'number', 'integer', 'boolean']);

/**
 * `T | null` in a wire schema. A string, number, integer or boolean becomes `nullable: true`
 * (OpenAPI 3.0's spelling, which ajv and fast-json-stringify read): the server writes such a
 * field directly. Anything else becomes `anyOf [T, null]`.
 */
export function Nullable<T extends TSchema>(t: T): TUnsafe<Static<T> | null> | TUnion<[T, TNull]> {
  if (typeof t.type === 'string' && PRIMITIVES.has(t.type)) {
    const { [Kind]: _kind, ...schema } = t;
    // With an enum, null must be one of its values too (OpenAPI 3.0.3; ajv checks enum for null alike).
    return Type.Unsafe<Static<T> | null>({ ...schema, nullable: true, ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}) });
  }
  return Type.Union([t, Type.Null()]);
}

/** One of a few strings, as `enum` (not an `anyOf` of constants). */
export function StringEnum<V extends string>(values: readonly V[], options: { description?: string } = {}): TUnsafe<V> {
  return Type.Unsafe<V>({ type: 'string', enum: [...values], ...options });
}
