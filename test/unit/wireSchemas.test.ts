/**
 * Nullable primitives and string enums are plain JSON Schema that fastify validates and writes
 * directly; other nullable shapes stay an anyOf. Checked through a real fastify instance: what a
 * route answers and what it accepts.
 */
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { Type } from '@sinclair/typebox';
import { Nullable, StringEnum } from '../../src/shared/wireSchemas.js';

const Status = StringEnum(['queued', 'running'] as const);
const Shape = Type.Object({
  name: Nullable(Type.String()),
  count: Nullable(Type.Integer({ minimum: 1 })),
  status: Status,
  late: Nullable(Status),
  tags: Nullable(Type.Array(Type.String())),
});

describe('wire schemas', () => {
  it('makes nullable primitives and enums plain schema, other shapes an anyOf', () => {
    expect(JSON.parse(JSON.stringify(Nullable(Type.String())))).toEqual({ type: 'string', nullable: true });
    expect(JSON.parse(JSON.stringify(Nullable(Status)))).toEqual({ type: 'string', enum: ['queued', 'running', null], nullable: true });
    expect(JSON.parse(JSON.stringify(Nullable(Type.Array(Type.String()))))).toEqual({ anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }] });
  });

  it('is written and checked by fastify: nulls stay null, values stay values, bad input is refused', async () => {
    // As the server sets ajv up (src/server/app.ts): no coercion, nothing removed.
    const app = Fastify({ ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false } } });
    app.post('/echo', { schema: { body: Shape, response: { 200: Shape } } }, async (request) => request.body);
    try {
      const send = (body: unknown) => app.inject({ method: 'POST', url: '/echo', payload: body as object });
      const full = { name: 'x', count: 2, status: 'running', late: 'queued', tags: ['a'] };
      const empty = { name: null, count: null, status: 'queued', late: null, tags: null };
      expect((await send(full)).json()).toEqual(full);
      expect((await send(empty)).json()).toEqual(empty);
      for (const bad of [{ ...full, count: 0 }, { ...full, status: 'gone' }, { ...full, late: 'gone' }, { ...full, name: 3 }]) {
        expect((await send(bad)).statusCode).toBe(400);
      }
    } finally {
      await app.close();
    }
  });
});
